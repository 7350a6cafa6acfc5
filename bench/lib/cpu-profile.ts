import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
}

interface Profile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples?: number[];
}

export interface SelfTime {
  readonly name: string;
  readonly percent: number;
}

function shortUrl(url: string): string {
  const nm = url.lastIndexOf("node_modules/");
  if (nm >= 0) return url.slice(nm + "node_modules/".length);
  const src = url.search(/\/(src|gen|bench|test)\//);
  if (src >= 0) return url.slice(src + 1);
  return url.replace(/^file:\/\/.*\//, "");
}

/**
 * Self time in the `.cpuprofile` files of a directory, summed per key
 * (`keyOf` a sampled function), each as a share of all samples, most first.
 */
async function selfTimeBy(
  dir: string,
  keyOf: (frame: ProfileNode["callFrame"]) => string,
): Promise<SelfTime[]> {
  const files = (await readdir(dir)).filter((f) => f.endsWith(".cpuprofile"));
  const hits = new Map<string, number>();
  let total = 0;
  for (const file of files) {
    const profile = JSON.parse(await readFile(join(dir, file), "utf8")) as Profile;
    for (const node of profile.nodes) {
      const n = node.hitCount ?? 0;
      if (n === 0) continue;
      const key = keyOf(node.callFrame);
      hits.set(key, (hits.get(key) ?? 0) + n);
      total += n;
    }
  }
  return [...hits.entries()]
    .sort((a, b) => b[1] - a[1])
    .map(([name, n]) => ({ name, percent: (100 * n) / Math.max(1, total) }));
}

/** The functions (name and script) with the most self time. */
export async function topSelfTime(dir: string, count: number): Promise<SelfTime[]> {
  const top = await selfTimeBy(dir, ({ functionName, url, lineNumber }) =>
    url
      ? `${functionName || "(anonymous)"} ${shortUrl(url)}:${lineNumber + 1}`
      : functionName || "(anonymous)",
  );
  return top.slice(0, count);
}

/** Who a profiled function belongs to: a package, Node's core, the broker, or V8 itself. */
function ownerOf({ url, functionName }: ProfileNode["callFrame"]): string {
  if (!url) return functionName === "(idle)" ? "(idle)" : "V8 and native (GC, microtasks, …)";
  if (url.startsWith("node:")) return "Node core (http2, streams, events, …)";
  const nm = url.lastIndexOf("node_modules/");
  if (nm >= 0) {
    const parts = url.slice(nm + "node_modules/".length).split("/");
    return parts[0]?.startsWith("@") ? `${parts[0]}/${parts[1]}` : (parts[0] ?? url);
  }
  if (/\/src\//.test(url)) return "the broker (src/)";
  if (/\/gen\//.test(url)) return "generated code (gen/)";
  return "other";
}

/**
 * Self time grouped by owner (see {@link ownerOf}), as a share of all
 * samples: where a request's CPU goes, framework by framework.
 */
export function selfTimeByOwner(dir: string): Promise<SelfTime[]> {
  return selfTimeBy(dir, ownerOf);
}
