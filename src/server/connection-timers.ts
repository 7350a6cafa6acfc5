import type * as http from "node:http";
import type * as http2 from "node:http2";

/**
 * Destroys `session` once it has had no open stream for `idleMs`. A session
 * with an open stream (e.g. a quiet WatchToken) is never touched.
 */
export function destroyWhenIdle(session: http2.ServerHttp2Session, idleMs: number): void {
  let open = 0;
  session.on("stream", (stream) => {
    open++;
    stream.once("close", () => {
      open--;
    });
  });
  session.setTimeout(idleMs, () => {
    if (open === 0) session.destroy();
  });
}

/**
 * Calls `onStall` unless `request`'s body has been read to its end within
 * `ms` (or the request closed first). Listening for "end" does not consume
 * the body: the handler still reads it.
 */
export function whenRequestStalls(
  request: http.IncomingMessage | http2.ServerHttp2Stream,
  ms: number,
  onStall: () => void,
): void {
  const timer = setTimeout(onStall, ms);
  const clear = () => clearTimeout(timer);
  request.once("end", clear);
  request.once("close", clear);
}
