import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { parse } from "yaml";
import type { Logger } from "../shared/logger.js";

/**
 * A digest of the config file and of every file it names as `{file: …}`
 * (AppSecrets, encryption keys, passwords), or undefined while one cannot
 * be read. Contents, not modification times: a Kubernetes ConfigMap or
 * Secret volume updates by swapping a symlink, which leaves the times of
 * the paths the config names as they were.
 */
export function configDigest(configPath: string): string | undefined {
  try {
    const text = readFileSync(configPath, "utf8");
    const hash = createHash("sha256").update(text);
    for (const file of referencedFiles(parse(text))) {
      hash.update(`\0${file}\0`).update(readFileSync(file));
    }
    return hash.digest("hex");
  } catch {
    return undefined;
  }
}

/** The values of every `file` key in the document, sorted, once each. */
function referencedFiles(document: unknown): string[] {
  const files = new Set<string>();
  const walk = (node: unknown): void => {
    if (Array.isArray(node)) {
      for (const item of node) walk(item);
    } else if (typeof node === "object" && node !== null) {
      for (const [key, value] of Object.entries(node)) {
        if (key === "file" && typeof value === "string") files.add(value);
        else walk(value);
      }
    }
  };
  walk(document);
  return [...files].sort();
}

/**
 * Runs `reload` whenever the digest of the config and the files it names
 * changes, checked every `intervalMs` (`serve --watch-config SECONDS`): for
 * mounted ConfigMaps and Secrets, which change in place with no signal. A
 * moment when the files cannot be read (mid-update) is skipped, not a
 * change. Returns a function that stops watching.
 */
export function watchConfig(
  configPath: string,
  intervalMs: number,
  reload: () => void,
  logger: Logger,
  initial: string | undefined = configDigest(configPath),
): () => void {
  let last = initial;
  const timer = setInterval(() => {
    const now = configDigest(configPath);
    if (now === undefined || now === last) return;
    last = now;
    logger.info({ trigger: "watch" }, "config files changed; reloading");
    reload();
  }, intervalMs);
  timer.unref();
  return () => clearInterval(timer);
}
