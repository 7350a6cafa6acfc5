import { afterEach, describe, expect, it } from "vitest";
import { BrokerMetrics, type CredentialSample } from "../../src/observability/metrics.js";
import { type MetricsServer, startMetricsServer } from "../../src/observability/metrics-server.js";
import { silentLogger } from "../../src/shared/logger.js";
import { FakeClock } from "../helpers/fake-clock.js";

const SECRET = "good-secret-1f2e3d4c5b6a";
const TOKEN = `93_${"aB3xZ9".repeat(24)}`;
const SERVICE = "tokenbroker.v1.TokenService";

let server: MetricsServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

async function serve(metrics: BrokerMetrics): Promise<MetricsServer> {
  server = await startMetricsServer({
    host: "127.0.0.1",
    port: 0,
    metrics,
    logger: silentLogger(),
  });
  return server;
}

async function scrape(s: MetricsServer): Promise<{ type: string | null; lines: string[] }> {
  const res = await fetch(`${s.url}metrics`);
  expect(res.status).toBe(200);
  return { type: res.headers.get("content-type"), lines: (await res.text()).split("\n") };
}

/** The sample lines of one metric family (no HELP/TYPE). */
function family(lines: string[], name: string): string[] {
  return lines.filter((l) => l.startsWith(`${name}{`) || l.startsWith(`${name} `));
}

describe("metrics over a real /metrics scrape", () => {
  it("exports counters and histograms with their labels", async () => {
    const metrics = new BrokerMetrics();
    metrics.rpcHandled(SERVICE, "GetToken", "ok", 0.0002);
    metrics.rpcHandled(SERVICE, "GetToken", "ok", 0.003);
    metrics.rpcHandled(SERVICE, "GetToken", "unavailable", 2);
    metrics.upstreamCall("/cgi-bin/token", "ok", 0.04);
    metrics.upstreamCall("/cgi-bin/token", "40125", 0.02);
    metrics.upstreamCall("/cgi-bin/token", "40125", 0.03);
    metrics.upstreamCall("/cgi-bin/ticket/getticket", "timeout", 5);
    metrics.refreshOutcome("good", "access_token", "refreshed");
    metrics.refreshOutcome("good", "access_token", "failed");
    metrics.lockWait(0.003, true);
    metrics.lockWait(4, false);
    metrics.watchers(4);
    metrics.watchers(3);
    const s = await serve(metrics);
    const { type, lines } = await scrape(s);

    expect(type).toBe(metrics.contentType);
    expect(type).toMatch(/^text\/plain; version=0\.0\.4/);
    const rpc = `service="${SERVICE}",method="GetToken"`;
    expect(family(lines, "tokenbroker_rpc_handled_total")).toEqual([
      `tokenbroker_rpc_handled_total{${rpc},code="ok"} 2`,
      `tokenbroker_rpc_handled_total{${rpc},code="unavailable"} 1`,
    ]);
    expect(lines).toContain(`tokenbroker_rpc_duration_seconds_bucket{le="0.0001",${rpc}} 0`);
    expect(lines).toContain(`tokenbroker_rpc_duration_seconds_bucket{le="0.00025",${rpc}} 1`);
    expect(lines).toContain(`tokenbroker_rpc_duration_seconds_bucket{le="0.005",${rpc}} 2`);
    expect(lines).toContain(`tokenbroker_rpc_duration_seconds_bucket{le="10",${rpc}} 3`);
    expect(lines).toContain(`tokenbroker_rpc_duration_seconds_count{${rpc}} 3`);
    expect(lines).toContain(`tokenbroker_rpc_duration_seconds_sum{${rpc}} 2.0032`);

    expect(family(lines, "tokenbroker_upstream_calls_total")).toEqual([
      'tokenbroker_upstream_calls_total{endpoint="/cgi-bin/token",outcome="ok"} 1',
      'tokenbroker_upstream_calls_total{endpoint="/cgi-bin/token",outcome="40125"} 2',
      'tokenbroker_upstream_calls_total{endpoint="/cgi-bin/ticket/getticket",outcome="timeout"} 1',
    ]);
    expect(lines).toContain(
      'tokenbroker_upstream_duration_seconds_count{endpoint="/cgi-bin/token"} 3',
    );
    expect(lines).toContain(
      'tokenbroker_upstream_duration_seconds_bucket{le="0.025",endpoint="/cgi-bin/token"} 1',
    );
    expect(family(lines, "tokenbroker_refresh_total")).toEqual([
      'tokenbroker_refresh_total{app="good",kind="access_token",outcome="refreshed"} 1',
      'tokenbroker_refresh_total{app="good",kind="access_token",outcome="failed"} 1',
    ]);
    expect(lines).toContain('tokenbroker_lock_wait_seconds_count{acquired="true"} 1');
    expect(lines).toContain('tokenbroker_lock_wait_seconds_count{acquired="false"} 1');
    expect(lines).toContain('tokenbroker_lock_wait_seconds_bucket{le="0.005",acquired="true"} 1');
    expect(family(lines, "tokenbroker_watch_streams")).toEqual(["tokenbroker_watch_streams 3"]);
    // Default process metrics live in the same (private) registry.
    expect(lines.some((l) => l.startsWith("process_cpu_user_seconds_total "))).toBe(true);
  });

  it("exports breaker state as 0/1/2 and counts transitions", async () => {
    const metrics = new BrokerMetrics();
    metrics.breakerState("good", "/cgi-bin/token", "closed");
    metrics.breakerState("other", "/cgi-bin/token", "closed");
    metrics.breakerTransition("good", "/cgi-bin/token", "open");
    metrics.breakerTransition("good", "/cgi-bin/token", "half_open");
    metrics.breakerTransition("good", "/cgi-bin/token", "open");
    const s = await serve(metrics);
    let { lines } = await scrape(s);
    expect(family(lines, "tokenbroker_breaker_state")).toEqual([
      'tokenbroker_breaker_state{app="good",endpoint="/cgi-bin/token"} 2',
      'tokenbroker_breaker_state{app="other",endpoint="/cgi-bin/token"} 0',
    ]);
    expect(family(lines, "tokenbroker_breaker_transitions_total")).toEqual([
      'tokenbroker_breaker_transitions_total{app="good",endpoint="/cgi-bin/token",to="open"} 2',
      'tokenbroker_breaker_transitions_total{app="good",endpoint="/cgi-bin/token",to="half_open"} 1',
    ]);
    metrics.breakerTransition("good", "/cgi-bin/token", "half_open");
    ({ lines } = await scrape(s));
    expect(lines).toContain('tokenbroker_breaker_state{app="good",endpoint="/cgi-bin/token"} 1');
  });

  it("computes credential and quota gauges at scrape time", async () => {
    const clock = new FakeClock();
    const t0 = clock.now();
    const metrics = new BrokerMetrics();
    const s = await serve(metrics);
    // No sources yet: the families exist but have no samples.
    let { lines } = await scrape(s);
    expect(family(lines, "tokenbroker_credential_remaining_seconds")).toEqual([]);
    expect(family(lines, "tokenbroker_quota_used")).toEqual([]);

    let credentials: CredentialSample[] = [
      {
        app: "good",
        kind: "access_token",
        fetchedAt: t0 - 600_000,
        expiresAt: t0 + 6_600_000,
        version: 3,
      },
      {
        app: "good",
        kind: "jsapi_ticket",
        fetchedAt: t0 - 1_500,
        expiresAt: t0 + 7_198_500,
        version: 1,
      },
    ];
    let reads = 0;
    metrics.setCredentialSource(() => {
      reads++;
      return credentials;
    }, clock);
    metrics.setQuotaSource(() => [
      { app: "good", endpoint: "/cgi-bin/token", used: 12, budget: 1800, limit: 2000 },
    ]);
    expect(reads).toBe(0);

    ({ lines } = await scrape(s));
    expect(family(lines, "tokenbroker_credential_remaining_seconds")).toEqual([
      'tokenbroker_credential_remaining_seconds{app="good",kind="access_token"} 6600',
      'tokenbroker_credential_remaining_seconds{app="good",kind="jsapi_ticket"} 7198.5',
    ]);
    expect(family(lines, "tokenbroker_credential_age_seconds")).toEqual([
      'tokenbroker_credential_age_seconds{app="good",kind="access_token"} 600',
      'tokenbroker_credential_age_seconds{app="good",kind="jsapi_ticket"} 1.5',
    ]);
    expect(family(lines, "tokenbroker_credential_version")).toEqual([
      'tokenbroker_credential_version{app="good",kind="access_token"} 3',
      'tokenbroker_credential_version{app="good",kind="jsapi_ticket"} 1',
    ]);
    expect(family(lines, "tokenbroker_quota_used")).toEqual([
      'tokenbroker_quota_used{app="good",endpoint="/cgi-bin/token"} 12',
    ]);
    expect(family(lines, "tokenbroker_quota_remaining")).toEqual([
      'tokenbroker_quota_remaining{app="good",endpoint="/cgi-bin/token"} 1788',
    ]);
    expect(family(lines, "tokenbroker_quota_limit")).toEqual([
      'tokenbroker_quota_limit{app="good",endpoint="/cgi-bin/token"} 2000',
    ]);

    // Time passes and the ticket goes away: the next scrape reflects both.
    await clock.advance(7_000_000);
    credentials = credentials.slice(0, 1);
    ({ lines } = await scrape(s));
    expect(family(lines, "tokenbroker_credential_remaining_seconds")).toEqual([
      'tokenbroker_credential_remaining_seconds{app="good",kind="access_token"} -400',
    ]);
    expect(family(lines, "tokenbroker_credential_age_seconds")).toEqual([
      'tokenbroker_credential_age_seconds{app="good",kind="access_token"} 7600',
    ]);
  });

  it("counts alerts and keeps one active instance per firing app", async () => {
    const metrics = new BrokerMetrics();
    metrics.alert("upstream_config_error", "firing");
    metrics.alert("upstream_config_error", "firing");
    metrics.alert("upstream_config_error", "resolved");
    metrics.alert("quota_low", "firing");
    metrics.alert("quota_low", "resolved");
    metrics.alert("quota_low", "resolved");
    const { lines } = await scrape(await serve(metrics));
    expect(family(lines, "tokenbroker_alerts_total")).toEqual([
      'tokenbroker_alerts_total{alert="upstream_config_error",state="firing"} 2',
      'tokenbroker_alerts_total{alert="upstream_config_error",state="resolved"} 1',
      'tokenbroker_alerts_total{alert="quota_low",state="firing"} 1',
      'tokenbroker_alerts_total{alert="quota_low",state="resolved"} 2',
    ]);
    expect(family(lines, "tokenbroker_alert_active")).toEqual([
      'tokenbroker_alert_active{alert="upstream_config_error"} 1',
      'tokenbroker_alert_active{alert="quota_low"} 0',
    ]);
  });

  it("never exports a secret or a token, even one passed as a label by mistake", async () => {
    const clock = new FakeClock();
    const metrics = new BrokerMetrics();
    metrics.rpcHandled(SERVICE, "GetToken", "ok", 0.001);
    metrics.upstreamCall("/cgi-bin/token", "40125", 0.02);
    metrics.refreshOutcome("good", "access_token", "refreshed");
    metrics.setCredentialSource(
      () => [{ app: "good", kind: "access_token", fetchedAt: 0, expiresAt: 7_200_000, version: 1 }],
      clock,
    );
    // A caller bug: the token itself where an endpoint belongs.
    metrics.upstreamCall(TOKEN, "ok", 0.01);
    const res = await fetch(`${(await serve(metrics)).url}metrics`);
    const text = await res.text();
    expect(text).not.toContain(SECRET);
    expect(text).not.toContain(TOKEN);
    expect(text).not.toContain(TOKEN.slice(0, 40));
    expect(text).toContain(
      'tokenbroker_upstream_calls_total{endpoint="_overlong_",outcome="ok"} 1',
    );
  });

  it("answers /healthz, 404s everything else, and closes twice", async () => {
    const metrics = new BrokerMetrics();
    // A second instance in the same process does not collide with the first.
    const other = new BrokerMetrics();
    other.watchers(9);
    const s = await serve(metrics);
    expect(s.port).toBeGreaterThan(0);
    expect(s.url).toBe(`http://127.0.0.1:${s.port}/`);

    const health = await fetch(`${s.url}healthz`);
    expect(health.status).toBe(200);
    expect(await health.text()).toBe("ok");
    for (const path of ["", "nope", "metrics/x", "healthz/"]) {
      const res = await fetch(`${s.url}${path}`);
      expect(res.status, path).toBe(404);
      await res.text();
    }
    const post = await fetch(`${s.url}metrics`, { method: "POST", body: "x" });
    expect(post.status).toBe(404);
    await post.text();
    const withQuery = await fetch(`${s.url}metrics?name[]=x`);
    expect(withQuery.status).toBe(200);
    expect(await withQuery.text()).toContain("tokenbroker_watch_streams 0");

    await s.close();
    await s.close();
    await expect(fetch(`${s.url}healthz`)).rejects.toThrow();
    server = undefined;
  });
});
