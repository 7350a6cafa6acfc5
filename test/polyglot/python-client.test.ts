/**
 * A service in another language can use the broker with nothing but our
 * proto: test/polyglot/token_client.py generates Python stubs from
 * proto/tokenbroker/v1/token_service.proto with grpc_tools.protoc at test
 * time, then calls the real broker (in this process, on port 0, with the
 * WeChat emulator as upstream) over gRPC.
 *
 * The script writes one JSON line per step and waits for a line on stdin
 * before the next, so each step is checked against the broker and the
 * emulator while nothing moves. Needs the Debian interpreter /usr/bin/python3
 * with python3-grpcio, python3-grpc-tools and python3-protobuf: without them
 * the tests fail (never skip), naming scripts/install-test-deps.sh.
 */
import { spawn, spawnSync } from "node:child_process";
import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { StoredCredential } from "../../src/core/credential.js";
import type { TokenCheck } from "../../src/emulator/index.js";
import { fingerprint } from "../../src/shared/fingerprint.js";
import type { InvalidateResult } from "../../src/token/token-manager.js";
import { type BrokerHarness, startBrokerHarness } from "../helpers/broker-harness.js";

const PYTHON = "/usr/bin/python3";
const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const SCRIPT = join(ROOT, "test/polyglot/token_client.py");
const PROTO_DIR = join(ROOT, "proto");
const INSTALL_HINT =
  "run scripts/install-test-deps.sh (as root) to install python3-grpcio, python3-grpc-tools and python3-protobuf";
const APP = { id: "demo", appid: "wx00000000000000a1", secret: "polyglot-secret-0123456789abcdef" };
const TOKEN_ENDPOINT = "/cgi-bin/token";
/** The emulator's default token lifetime, in seconds. */
const LIFETIME_S = 7200;
/** WeChat's overlap after a rotation, which the broker reports as previous_valid_until. */
const ROTATION_OVERLAP_MS = 300_000;
/** For the whole Python run: protoc, imports and every call. */
const RUN_TIMEOUT_MS = 12_000;

interface TokenLine {
  step: string;
  app_id: string;
  kind: string;
  value: string;
  version: number;
  expires_in: number;
  expires_at_ms: number;
  fetched_at_ms: number;
  fingerprint: string;
}
interface InvalidateLine extends TokenLine {
  refreshed: boolean;
  outcome: string;
}
interface WatchLine extends TokenLine {
  previous_valid_until_ms: number | null;
}
interface ErrorLine {
  step: string;
  code: string;
  details: string;
}
interface StubsLine {
  step: "stubs";
  files: string[];
  grpc_version: string;
}

/** One line of the script, with what the broker and the emulator said right after it. */
interface Observed {
  line: Record<string, unknown>;
  /**
   * What the broker holds for demo/access_token (a cached read: no upstream
   * call); unset while the emulator has issued nothing, since reading then would fetch.
   */
  held: StoredCredential | undefined;
  /** The emulator's verdict on the line's `value`, when it has one. */
  check: TokenCheck | undefined;
  /** The emulator's verdict on every value Python has seen so far, by value. */
  checks: Map<string, TokenCheck>;
  /** `/cgi-bin/token` calls the emulator has served so far. */
  tokenCalls: number;
}

interface PythonRun {
  steps: Map<string, Observed>;
  order: string[];
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  stderr: string;
  /** The refresh the test caused from the Node side after watch_first. */
  nodeRefresh: InvalidateResult | undefined;
  stubFilesLeft: string[];
}

let harness: BrokerHarness | undefined;
let outDir: string | undefined;
let run: PythonRun | undefined;
/** Why the Python run could not happen; every test fails with it (none is skipped). */
let setupError: unknown;

function requirePythonGrpc(): void {
  const probe = spawnSync(PYTHON, ["-c", "import grpc, grpc_tools, google.protobuf"], {
    encoding: "utf8",
    timeout: 10_000,
  });
  if (probe.error || probe.status !== 0) {
    const why = probe.error ? probe.error.message : probe.stderr.trim().split("\n").at(-1);
    throw new Error(`${PYTHON} cannot import grpc and grpc_tools (${why}): ${INSTALL_HINT}`);
  }
}

async function runPythonClient(h: BrokerHarness, out: string): Promise<PythonRun> {
  const child = spawn(
    PYTHON,
    [SCRIPT, "--addr", h.grpcAddress, "--proto-dir", PROTO_DIR, "--out", out, "--app", APP.id],
    { cwd: ROOT, stdio: ["pipe", "pipe", "pipe"], timeout: RUN_TIMEOUT_MS },
  );
  const result: PythonRun = {
    steps: new Map(),
    order: [],
    exitCode: null,
    signal: null,
    stderr: "",
    nodeRefresh: undefined,
    stubFilesLeft: [],
  };
  child.stderr.setEncoding("utf8").on("data", (chunk: string) => {
    result.stderr += chunk;
  });
  // The script may be gone before our answer arrives (a failure); the exit status says why.
  child.stdin.on("error", () => {});
  const closed = new Promise<void>((resolveClosed, reject) => {
    child.on("error", reject);
    child.on("close", (code, signal) => {
      result.exitCode = code;
      result.signal = signal;
      resolveClosed();
    });
  });

  const manager = h.broker.manager;
  reportedEnd = (c) => manager.reportedExpiresAt(APP.id, "access_token", c);
  const control = h.emulator.control;
  const seen = new Set<string>();
  try {
    for await (const text of createInterface({ input: child.stdout, crlfDelay: Infinity })) {
      const line = JSON.parse(text) as Record<string, unknown>;
      const step = String(line.step);
      result.order.push(step);
      if (step === "missing_deps") throw new Error(`${String(line.message)} (${INSTALL_HINT})`);
      if (step === "stubs") result.stubFilesLeft = await listFiles(out);
      const tokenCalls = control.callCount(TOKEN_ENDPOINT);
      const held =
        tokenCalls === 0
          ? undefined
          : await manager.get(APP.id, "access_token", AbortSignal.timeout(2000));
      if (typeof line.value === "string") seen.add(line.value);
      result.steps.set(step, {
        line,
        held,
        check: typeof line.value === "string" ? control.checkToken(line.value) : undefined,
        checks: new Map([...seen].map((v) => [v, control.checkToken(v)])),
        tokenCalls,
      });
      if (step === "watch_first") {
        // The refresh the open Python stream should deliver next.
        result.nodeRefresh = await manager.invalidate(
          APP.id,
          "access_token",
          String(line.value),
          40001,
          AbortSignal.timeout(2000),
        );
      }
      if (step === "done" || step === "error") break;
      child.stdin.write("next\n");
    }
  } catch (err) {
    // Nothing must outlive the test: stop the script, then report what went wrong.
    child.kill("SIGKILL");
    await closed.catch(() => {});
    throw err;
  }
  child.stdin.end();
  await closed;
  return result;
}

async function listFiles(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries
    .filter((e) => e.isFile() && e.name.endsWith(".py"))
    .map((e) => join(e.parentPath, e.name).slice(dir.length + 1))
    .sort();
}

function pythonRun(): PythonRun {
  if (setupError !== undefined) throw setupError;
  if (!run) throw new Error("the Python client did not run");
  return run;
}

function observed(step: string): Observed {
  const r = pythonRun();
  const o = r.steps.get(step);
  if (!o) {
    const error = r.steps.get("error");
    throw new Error(
      `the Python client never reported step ${step}; it reported [${r.order.join(", ")}], ` +
        `exit ${r.exitCode ?? r.signal}, stderr:\n${r.stderr}` +
        (error ? `\nerror: ${JSON.stringify(error.line)}` : ""),
    );
  }
  return o;
}

function tokenLine<T extends TokenLine>(step: string): T {
  return observed(step).line as unknown as T;
}

/** The end the broker tells clients of a credential (at most 300 s past its rotation). */
let reportedEnd: (c: StoredCredential) => number = (c) => c.expiresAt;

/** A token line agrees with the broker's stored credential in every field. */
function expectSameToken(line: TokenLine, held: StoredCredential | undefined): void {
  if (!held) throw new Error(`the broker held no token after step ${line.step}`);
  expect(line.app_id).toBe(APP.id);
  expect(line.kind).toBe("TOKEN_KIND_ACCESS_TOKEN");
  expect(line.value).toBe(held.value);
  expect(line.version).toBe(held.version);
  const end = reportedEnd(held);
  expect(end).toBeLessThan(held.fetchedAt + LIFETIME_S * 1000); // classic: cut to rotation + 300 s
  expect(line.expires_at_ms).toBe(end);
  expect(line.fetched_at_ms).toBe(held.fetchedAt);
  expect(line.fingerprint).toBe(fingerprint(held.value));
  expect(line.expires_in).toBeGreaterThan((end - held.fetchedAt) / 1000 - 15);
  expect(line.expires_in).toBeLessThanOrEqual((end - held.fetchedAt) / 1000);
}

describe("a Python client with stubs generated from our proto", () => {
  beforeAll(async () => {
    // A failure here is kept and thrown by every test, so a machine without
    // the Python packages shows failed tests, never skipped ones.
    try {
      requirePythonGrpc();
      harness = await startBrokerHarness([{ ...APP, type: "official_account" }]);
      outDir = await mkdtemp(join(tmpdir(), "token-broker-pystubs-"));
      run = await runPythonClient(harness, outDir);
    } catch (err) {
      setupError = err;
    }
  });

  afterAll(async () => {
    await harness?.close();
    if (outDir) await rm(outDir, { recursive: true, force: true });
  });

  it("generates stubs with grpc_tools.protoc and runs every step to the end", () => {
    const { line, tokenCalls } = observed("stubs");
    const stubs = line as unknown as StubsLine;
    // Nothing has asked for a token yet: the first GetToken below is Python's.
    expect(tokenCalls).toBe(0);
    expect(stubs.files).toEqual([
      "tokenbroker/v1/token_service_pb2.py",
      "tokenbroker/v1/token_service_pb2_grpc.py",
    ]);
    const r = pythonRun();
    expect(r.stubFilesLeft).toEqual(stubs.files);
    expect(r.order).toEqual([
      "stubs",
      "get",
      "get_unknown_app",
      "get_kind_unset",
      "invalidate",
      "invalidate_stale",
      "watch_first",
      "watch_node",
      "watch_invalidate",
      "watch_python",
      "done",
    ]);
    expect(r.exitCode, r.stderr).toBe(0);
  });

  it("GetToken: Python gets the token the broker holds, which WeChat accepts; one fetch", () => {
    const { line, held, check, tokenCalls } = observed("get");
    const got = line as unknown as TokenLine;
    expectSameToken(got, held);
    expect(got.version).toBe(1);
    expect(check).toMatchObject({ valid: true, appid: APP.appid, role: "current" });
    expect(tokenCalls).toBe(1);
  });

  it("GetToken errors reach Python as status codes with the broker's details", () => {
    expect(observed("get_unknown_app").line as unknown as ErrorLine).toEqual({
      step: "get_unknown_app",
      code: "NOT_FOUND",
      details:
        "app 'no-such-app' is not configured on this broker; check the app id or add it to the broker's config",
    });
    expect(observed("get_kind_unset").line as unknown as ErrorLine).toEqual({
      step: "get_kind_unset",
      code: "INVALID_ARGUMENT",
      details:
        "kind is required: one of TOKEN_KIND_ACCESS_TOKEN, TOKEN_KIND_JSAPI_TICKET, TOKEN_KIND_WX_CARD_TICKET, TOKEN_KIND_USER_ACCESS_TOKEN, TOKEN_KIND_WECOM_AGENT_TICKET",
    });
    // Rejected before any upstream call.
    expect(observed("get_kind_unset").tokenCalls).toBe(1);
  });

  it("InvalidateToken: the current value refreshes once; reporting it again fetches nothing", () => {
    const first = tokenLine<TokenLine>("get");
    const { line, held, check, tokenCalls } = observed("invalidate");
    const refreshed = line as unknown as InvalidateLine;
    expect(refreshed.refreshed).toBe(true);
    expect(refreshed.outcome).toBe("INVALIDATE_OUTCOME_REFRESHED");
    expectSameToken(refreshed, held);
    expect(refreshed.value).not.toBe(first.value);
    expect(refreshed.version).toBe(2);
    expect(check).toMatchObject({ valid: true, role: "current" });
    // The replaced token still works at WeChat, for the overlap.
    expect(observed("invalidate").checks.get(first.value)).toMatchObject({
      valid: true,
      role: "grace",
    });
    expect(tokenCalls).toBe(2);

    const stale = observed("invalidate_stale");
    const again = stale.line as unknown as InvalidateLine;
    expect(again.refreshed).toBe(false);
    expect(again.outcome).toBe("INVALIDATE_OUTCOME_ALREADY_REPLACED");
    expectSameToken(again, stale.held);
    expect(again.value).toBe(refreshed.value);
    expect(again.version).toBe(2);
    expect(stale.tokenCalls).toBe(2);
  });

  it("WatchToken: the current token first, without previous_valid_until", () => {
    const { line, held, check, tokenCalls } = observed("watch_first");
    const first = line as unknown as WatchLine;
    expectSameToken(first, held);
    expect(first.value).toBe(tokenLine<TokenLine>("invalidate").value);
    expect(first.version).toBe(2);
    expect(first.previous_valid_until_ms).toBeNull();
    expect(check).toMatchObject({ valid: true, role: "current" });
    expect(tokenCalls).toBe(2);
  });

  it("WatchToken: a refresh made on the Node side reaches the Python stream", () => {
    const before = tokenLine<WatchLine>("watch_first");
    const { nodeRefresh } = pythonRun();
    expect(nodeRefresh?.outcome).toBe("refreshed");
    const { line, held, check, checks, tokenCalls } = observed("watch_node");
    const next = line as unknown as WatchLine;
    expectSameToken(next, held);
    expect(next.value).toBe(nodeRefresh?.credential.value);
    expect(next.value).not.toBe(before.value);
    expect(next.version).toBe(3);
    expect(check).toMatchObject({ valid: true, role: "current" });
    // The replaced token keeps working for WeChat's overlap, and the broker
    // says so no later than the emulator ends it.
    expect(next.previous_valid_until_ms).toBe(next.fetched_at_ms + ROTATION_OVERLAP_MS);
    const replaced = checks.get(before.value);
    expect(replaced).toMatchObject({ valid: true, role: "grace" });
    expect(replaced?.validUntil).toBeGreaterThanOrEqual(next.previous_valid_until_ms ?? Infinity);
    expect(replaced?.validUntil).toBeLessThan((next.previous_valid_until_ms ?? 0) + 2000);
    expect(tokenCalls).toBe(3);
  });

  it("WatchToken: a refresh Python asks for arrives on its own stream", () => {
    const fromNode = tokenLine<WatchLine>("watch_node");
    const invalidated = observed("watch_invalidate").line as unknown as InvalidateLine;
    expect(invalidated.refreshed).toBe(true);
    expect(invalidated.outcome).toBe("INVALIDATE_OUTCOME_REFRESHED");
    expect(invalidated.version).toBe(4);

    const { line, held, check } = observed("watch_python");
    const next = line as unknown as WatchLine;
    expectSameToken(next, held);
    expect(next.value).toBe(invalidated.value);
    expect(next.value).not.toBe(fromNode.value);
    expect(next.version).toBe(4);
    expect(next.previous_valid_until_ms).toBe(next.fetched_at_ms + ROTATION_OVERLAP_MS);
    expect(check).toMatchObject({ valid: true, role: "current" });
  });

  it("makes exactly one upstream /cgi-bin/token call per version, and no other upstream call", () => {
    const control = harness?.emulator.control;
    expect(observed("done").tokenCalls).toBe(4);
    expect(control?.callCount(TOKEN_ENDPOINT)).toBe(4);
    expect(control?.callCount("/cgi-bin/stable_token")).toBe(0);
    expect(control?.callCount("/cgi-bin/ticket/getticket")).toBe(0);
  });
});
