import * as http2 from "node:http2";

export interface H2Answer {
  readonly status: number;
  readonly headers: http2.IncomingHttpHeaders;
  readonly trailers: http2.IncomingHttpHeaders;
  readonly body: Buffer;
}

/** One POST over h2c, for checking that the body h2load will send is answered properly. */
export async function h2Post(
  url: string,
  headers: Readonly<Record<string, string>>,
  body: Uint8Array,
): Promise<H2Answer> {
  const target = new URL(url);
  const session = http2.connect(target.origin);
  try {
    return await new Promise<H2Answer>((resolve, reject) => {
      session.once("error", reject);
      const req = session.request({
        ":method": "POST",
        ":path": target.pathname,
        ...headers,
      });
      let status = 0;
      let responseHeaders: http2.IncomingHttpHeaders = {};
      let trailers: http2.IncomingHttpHeaders = {};
      const chunks: Buffer[] = [];
      req.on("response", (h) => {
        status = Number(h[":status"]);
        responseHeaders = h;
      });
      req.on("trailers", (t) => {
        trailers = t;
      });
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () =>
        resolve({ status, headers: responseHeaders, trailers, body: Buffer.concat(chunks) }),
      );
      req.on("error", reject);
      req.end(body);
    });
  } finally {
    session.close();
  }
}

/** A gRPC length-prefixed message: flag 0 (uncompressed), 4-byte big-endian length, bytes. */
export function grpcFrame(message: Uint8Array): Buffer {
  const frame = Buffer.alloc(5 + message.length);
  frame.writeUInt32BE(message.length, 1);
  frame.set(message, 5);
  return frame;
}

/** The message inside a single gRPC frame. */
export function grpcUnframe(frame: Buffer): Buffer {
  if (frame.length < 5) throw new Error(`short gRPC frame (${frame.length} bytes)`);
  const length = frame.readUInt32BE(1);
  return frame.subarray(5, 5 + length);
}
