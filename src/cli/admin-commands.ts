import { timestampDate } from "@bufbuild/protobuf/wkt";
import { createClient } from "@connectrpc/connect";
import { AdminService } from "../../gen/tokenbroker/v1/admin_service_pb.js";
import { TokenKind } from "../../gen/tokenbroker/v1/token_service_pb.js";
import { brokerTransport, type ConnectionOptions } from "./connection.js";

export interface AdminOptions extends ConnectionOptions {
  timeoutMs: number;
}

function admin(o: AdminOptions) {
  return createClient(AdminService, brokerTransport(o));
}

const iso = (t: Parameters<typeof timestampDate>[0] | undefined) =>
  t ? timestampDate(t).toISOString() : "-";

/** `token-broker status`: one table per section, readable in a terminal. */
export async function statusCommand(o: AdminOptions & { app: string }): Promise<void> {
  const s = await admin(o).getStatus({ appId: o.app }, { timeoutMs: o.timeoutMs });
  const kindName = (k: TokenKind) => (TokenKind[k] ?? String(k)).toLowerCase();
  print("Apps", [
    ["APP", "TYPE", "KINDS"],
    ...s.apps.map((a) => [a.appId, a.type, a.kinds.map(kindName).join(",")]),
  ]);
  const rows: string[][] = [
    [
      "APP",
      "KIND",
      "VERSION",
      "EXPIRES",
      "NEXT REFRESH",
      "OVERDUE",
      "FINGERPRINT",
      "CLIENTS",
      "LAST ERROR",
    ],
  ];
  for (const c of s.credentials) {
    // Applied-version feedback: instances on the current version, and those still on a replaced one.
    const lagging =
      c.clientsSuperseded > 0
        ? `, ${c.clientsSuperseded} on v${c.supersededVersion} (works until ${iso(c.supersededValidUntil)})`
        : "";
    rows.push([
      c.appId,
      kindName(c.kind),
      c.version.toString(),
      iso(c.expiresAt),
      iso(c.nextRefreshAt),
      c.refreshOverdue ? "yes" : "no",
      c.fingerprint,
      `${c.clientsCurrent} current${lagging}`,
      c.lastError || "-",
    ]);
  }
  print("Credentials", rows);
  const budget = (b: bigint) => (b < 0n ? "unmetered" : b.toString());
  print("Quota (per China day; WeCom's per hour, its corp's count beside the app's)", [
    [
      "APP",
      "ENDPOINT",
      "WINDOW",
      "USED",
      "BUDGET",
      "CORP",
      "CORP USED",
      "CORP BUDGET",
      "BLOCKED UNTIL",
    ],
    ...s.quotas.map((q) => [
      q.appId,
      q.endpoint,
      q.window || "china_day",
      q.used.toString(),
      budget(q.budget),
      q.groupId || "-",
      q.groupId ? q.groupUsed.toString() : "-",
      q.groupId ? budget(q.groupBudget) : "-",
      iso(q.blockedUntil),
    ]),
  ]);
  print("WeChat circuits", [
    ["APP", "ENDPOINT", "STATE", "OPENED"],
    ...s.breakers.map((b) => [b.appId, b.endpoint, b.state, iso(b.openedAt)]),
  ]);
  print("Active alerts", [
    ["NAME", "APP", "SEVERITY", "SINCE", "SUMMARY"],
    ...s.alerts.map((a) => [a.name, a.appId || "-", a.severity, iso(a.since), a.summary]),
  ]);
}

export async function forceRefreshCommand(
  o: AdminOptions & { app: string; reason: string },
): Promise<void> {
  const res = await admin(o).forceRefresh(
    { appId: o.app, reason: o.reason },
    { timeoutMs: o.timeoutMs },
  );
  console.log(
    JSON.stringify({
      app: o.app,
      version: res.token?.version.toString(),
      fingerprint: res.token?.fingerprint,
    }),
  );
}

export async function clearQuotaCommand(
  o: AdminOptions & { app: string; reason: string },
): Promise<void> {
  await admin(o).clearQuota({ appId: o.app, reason: o.reason }, { timeoutMs: o.timeoutMs });
  console.log(JSON.stringify({ app: o.app, quotaCleared: true }));
}

function print(title: string, rows: string[][]): void {
  console.log(`\n${title}`);
  if (rows.length === 1) {
    console.log("  (none)");
    return;
  }
  const widths = (rows[0] ?? []).map((_, i) => Math.max(...rows.map((r) => (r[i] ?? "").length)));
  for (const r of rows)
    console.log(`  ${r.map((cell, i) => cell.padEnd(widths[i] ?? 0)).join("  ")}`.trimEnd());
}
