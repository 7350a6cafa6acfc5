/** What the fuzz test and its broker child process say to each other over IPC. */

export const FUZZ_APP = {
  id: "demo",
  appid: "wx00000000000fuzz1",
  secret: "fuzz-secret-0123456789",
} as const;

export interface MemorySample {
  heapUsed: number;
  heapTotal: number;
  rss: number;
  external: number;
  arrayBuffers: number;
  /** process.getActiveResourcesInfo().length: sockets, timers... still alive. */
  activeResources: number;
  /** The same, by type (TCPSocketWrap, Timeout, ...). */
  resourceTypes: Record<string, number>;
}

export interface LoggedError {
  msg: string;
  err?: { type?: string; message?: string; stack?: string };
  procedure?: string;
}

export type ChildMessage =
  | { type: "ready"; grpcPort: number; connectUrl: string }
  | { type: "memory"; id: number; sample: MemorySample; errors: LoggedError[] }
  | { type: "fault"; id: number }
  | { type: "closed" };

export type ParentMessage =
  | { type: "memory"; id: number }
  /** Delays the emulator's next `times` answers on every WeChat path by `ms`. */
  | { type: "fault"; id: number; latencyMs: number; times: number }
  | { type: "close" };
