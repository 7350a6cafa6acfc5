import { afterEach } from "vitest";
import { createEmulator, type Emulator, type EmulatorOptions } from "../../src/emulator/index.js";
import { FakeClock } from "../helpers/fake-clock.js";

/** 2026-01-01 04:00 UTC = 12:00 in Shanghai, far from the quota day boundary. */
export const START = Date.UTC(2026, 0, 1, 4, 0, 0);
export const APPID = "wx0000000000000001";
export const SECRET = "s".repeat(32);
export const OTHER_APPID = "wx0000000000000002";
export const OTHER_SECRET = "t".repeat(32);

/** A parsed WeChat answer: the JSON body plus what the HTTP layer said. */
export interface Answer {
  status: number;
  contentType: string | null;
  body: Record<string, unknown>;
}

export interface Harness {
  emulator: Emulator;
  clock: FakeClock;
  url: string;
  get(path: string, query?: Record<string, string>): Promise<Answer>;
  post(path: string, body?: unknown, query?: Record<string, string>): Promise<Answer>;
  /** `/cgi-bin/token` for APPID (or `appid`/`secret` given). */
  classic(appid?: string, secret?: string): Promise<Answer>;
  /** `/cgi-bin/stable_token` for APPID. */
  stable(force?: boolean, appid?: string, secret?: string): Promise<Answer>;
  /** `/cgi-bin/getcallbackip` with `token`: a cheap way to ask "does this token work?". */
  probe(token: string): Promise<Answer>;
  /** Advances the fake clock by whole seconds. */
  advance(seconds: number): Promise<void>;
}

const open: Emulator[] = [];

afterEach(async () => {
  await Promise.all(open.splice(0).map((e) => e.close()));
});

/** Starts an emulator on a free port with a FakeClock and two official accounts. */
export async function startEmulator(options: EmulatorOptions = {}): Promise<Harness> {
  const clock = new FakeClock(START);
  const emulator = createEmulator({
    clock,
    apps: [
      { appid: APPID, secret: SECRET },
      { appid: OTHER_APPID, secret: OTHER_SECRET },
    ],
    ...options,
  });
  open.push(emulator);
  const { url } = await emulator.listen();
  const get = (path: string, query: Record<string, string> = {}) =>
    send(`${url}${path}?${new URLSearchParams(query)}`, { method: "GET" });
  const post = (path: string, body?: unknown, query: Record<string, string> = {}) =>
    send(`${url}${path}?${new URLSearchParams(query)}`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: body === undefined ? "" : typeof body === "string" ? body : JSON.stringify(body),
    });
  return {
    emulator,
    clock,
    url,
    get,
    post,
    classic: (appid = APPID, secret = SECRET) =>
      get("/cgi-bin/token", { grant_type: "client_credential", appid, secret }),
    stable: (force = false, appid = APPID, secret = SECRET) =>
      post("/cgi-bin/stable_token", {
        grant_type: "client_credential",
        appid,
        secret,
        ...(force ? { force_refresh: true } : {}),
      }),
    probe: (token) => get("/cgi-bin/getcallbackip", { access_token: token }),
    advance: (seconds) => clock.advance(seconds * 1000),
  };
}

async function send(url: string, init: RequestInit): Promise<Answer> {
  const res = await fetch(url, init);
  const text = await res.text();
  let body: Record<string, unknown>;
  try {
    body = JSON.parse(text) as Record<string, unknown>;
  } catch {
    body = { text };
  }
  return { status: res.status, contentType: res.headers.get("content-type"), body };
}

/** The access_token of a successful token answer (fails the test otherwise). */
export function tokenOf(answer: Answer): string {
  const token = answer.body.access_token;
  if (typeof token !== "string") {
    throw new Error(`expected a token, got ${JSON.stringify(answer.body)}`);
  }
  return token;
}

/** The errcode of an answer (0 when the body has none, i.e. a success). */
export function errcodeOf(answer: Answer): number {
  return typeof answer.body.errcode === "number" ? answer.body.errcode : 0;
}

/** Runs `n` calls with bounded concurrency and returns the answers in order. */
export async function many(n: number, call: () => Promise<Answer>, width = 32): Promise<Answer[]> {
  const out: Answer[] = [];
  for (let i = 0; i < n; i += width) {
    const batch = Array.from({ length: Math.min(width, n - i) }, () => call());
    out.push(...(await Promise.all(batch)));
  }
  return out;
}
