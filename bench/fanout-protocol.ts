/** What the fan-out benchmark and its broker child processes say to each other over IPC. */

export const FANOUT_APP = {
  id: "fanout",
  appid: "wx000000000fanout01",
  secret: "fanout-secret-0123456789",
} as const;

/** gRPC path of WatchToken, served by the broker and by the bare baseline server alike. */
export const WATCH_PATH = "/tokenbroker.v1.TokenService/WatchToken";
export const INVALIDATE_PATH = "/tokenbroker.v1.TokenService/InvalidateToken";
export const GET_PATH = "/tokenbroker.v1.TokenService/GetToken";

/**
 * Milliseconds on a clock every process on the machine shares
 * (`process.hrtime` is CLOCK_MONOTONIC on Linux), so a time taken in a child
 * and one taken in the parent can be subtracted.
 */
export function nowMs(): number {
  return Number(process.hrtime.bigint()) / 1e6;
}

export interface MemorySample {
  heapUsed: number;
  rss: number;
  external: number;
  arrayBuffers: number;
}

/** How a child runs: the whole broker (memory or Redis store), or a bare grpc-js server. */
export type ChildMode = "broker" | "bare";

export type ChildMessage =
  | { type: "ready"; grpcPort: number }
  | { type: "memory"; id: number; sample: MemorySample }
  /** The broker's in-process watcher saw a new version (the write is committed). */
  | { type: "commit"; version: number; at: number }
  /** Bare server: the time it started writing the pushed message to its streams. */
  | { type: "pushed"; id: number; at: number; streams: number }
  | { type: "closed" };

export type ParentMessage =
  | { type: "memory"; id: number }
  /** Bare server only: write one message to every open stream. */
  | { type: "push"; id: number; version: number }
  | { type: "close" };
