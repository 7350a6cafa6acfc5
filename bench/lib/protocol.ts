/** What the benchmark parent and its server child processes share. */

/** The one app the broker under load serves. */
export const BENCH_APP = {
  id: "bench",
  appid: "wx0000000000bench01",
  secret: "bench-secret-0123456789",
} as const;

export const GET_TOKEN_PATH = "/tokenbroker.v1.TokenService/GetToken";

/** Sent by the child once it listens. */
export interface ChildReady {
  readonly type: "ready";
  /** The gRPC port (broker), or the only port (baselines). */
  readonly port: number;
  /** The Connect base URL (broker), or `http://127.0.0.1:port` (baselines). */
  readonly connectUrl: string;
}
