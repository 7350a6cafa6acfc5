import * as net from "node:net";
import { setTimeout as delay } from "node:timers/promises";
import { afterEach, describe, expect, it } from "vitest";
import { type SniffedProtocol, sniffProtocol } from "../../src/server/sniff.js";

let server: net.Server | undefined;
afterEach(async () => {
  await new Promise((resolve) => server?.close(resolve) ?? resolve(undefined));
  server = undefined;
});

/** Sends `chunks` one by one; resolves with the protocol picked and every byte the socket then yields. */
async function sniff(chunks: string[]): Promise<{ protocol: SniffedProtocol; bytes: string }> {
  let result: (r: { protocol: SniffedProtocol; bytes: string }) => void = () => {};
  const done = new Promise<{ protocol: SniffedProtocol; bytes: string }>((resolve) => {
    result = resolve;
  });
  const total = chunks.join("").length;
  server = net.createServer((socket) => {
    sniffProtocol(socket, (protocol) => {
      let bytes = "";
      socket.on("data", (d: Buffer) => {
        bytes += d.toString("latin1");
        if (bytes.length >= total) result({ protocol, bytes });
      });
      socket.resume();
    });
  });
  await new Promise<void>((resolve) => server?.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as net.AddressInfo;
  const client = net.connect(port, "127.0.0.1");
  await new Promise((resolve) => client.once("connect", resolve));
  for (const chunk of chunks) {
    client.write(chunk);
    await delay(5);
  }
  const r = await done;
  client.destroy();
  return r;
}

describe("sniffProtocol", () => {
  const preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

  it("picks h2 for the client preface, even when it arrives a byte at a time, and keeps every byte", async () => {
    const chunks = [...`${preface}\x00\x00\x00`];
    expect(await sniff(chunks)).toEqual({ protocol: "h2", bytes: chunks.join("") });
  });

  it("picks HTTP/1.1 as soon as the bytes stop matching the preface", async () => {
    expect(await sniff(["GET / HTTP/1.1\r\nHost: x\r\n\r\n"])).toEqual({
      protocol: "http/1.1",
      bytes: "GET / HTTP/1.1\r\nHost: x\r\n\r\n",
    });
    // "P" could still be the preface; "PO" cannot.
    expect(await sniff(["P", "OST / HTTP/1.1\r\n\r\n"])).toEqual({
      protocol: "http/1.1",
      bytes: "POST / HTTP/1.1\r\n\r\n",
    });
  });
});
