import { Code, ConnectError } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { headersToMetadata } from "../../src/server/grpc-metadata.js";
import {
  endingError,
  SHUTDOWN_MESSAGE,
  shutdownError,
  toGrpcStatus,
} from "../../src/server/grpc-status.js";
import { QuotaExhaustedError, StoreUnavailableError } from "../../src/shared/errors.js";
import { captureLogs } from "./harness.js";

function scope(signal = new AbortController().signal) {
  const { logger, lines } = captureLogs();
  return { scope: { procedure: "/a.v1.A/Do", signal, logger }, lines };
}

describe("endingError", () => {
  it("passes a ConnectError through unchanged and logs nothing", () => {
    const err = new ConnectError("no such app", Code.NotFound);
    const { scope: s, lines } = scope();
    expect(endingError(err, s)).toBe(err);
    expect(lines).toEqual([]);
  });

  it("turns anything else into a generic INTERNAL and logs the real error", () => {
    const { scope: s, lines } = scope();
    const mapped = endingError(new TypeError("secret detail"), s);
    expect(mapped.code).toBe(Code.Internal);
    expect(mapped.rawMessage).toBe("internal error");
    expect(mapped.cause).toBeUndefined();
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({
      level: 50,
      procedure: "/a.v1.A/Do",
      err: { message: "secret detail" },
    });
  });

  it("maps the broker's own errors through the one mapping, without an error log", () => {
    const { scope: s, lines } = scope();
    const quota = endingError(new QuotaExhaustedError("quota used up", 45009), s);
    expect([quota.code, quota.rawMessage]).toEqual([Code.ResourceExhausted, "quota used up"]);
    const outage = endingError(new StoreUnavailableError("ECONNREFUSED 10.0.0.7:6379"), s);
    expect(outage.code).toBe(Code.Unavailable);
    expect(outage.rawMessage).not.toContain("10.0.0.7");
    expect(lines).toEqual([]);
  });

  it("prefers the signal's ConnectError reason (shutdown, deadline) over what the handler threw", () => {
    const ac = new AbortController();
    ac.abort(shutdownError());
    const { scope: s, lines } = scope(ac.signal);
    for (const thrown of [
      new ConnectError("downstream canceled", Code.Canceled),
      new Error("AbortError"),
      undefined,
    ]) {
      expect(endingError(thrown, s)).toEqual(new ConnectError(SHUTDOWN_MESSAGE, Code.Unavailable));
    }
    expect(lines).toEqual([]);
  });

  it("calls a non-ConnectError after a plain abort CANCELED, without an error log", () => {
    const ac = new AbortController();
    ac.abort();
    const { scope: s, lines } = scope(ac.signal);
    expect(endingError(new Error("aborted"), s).code).toBe(Code.Canceled);
    expect(lines).toEqual([]);
  });
});

describe("toGrpcStatus", () => {
  it("uses the code number, the raw message and the error's metadata minus reserved keys", () => {
    const err = new ConnectError("bad app_id", Code.InvalidArgument, {
      "x-field": "app_id",
      "grpc-status": "0",
      "content-type": "text/plain",
    });
    const status = toGrpcStatus(err, new Headers({ "x-trailer": "t" }));
    expect(status.code).toBe(3);
    expect(status.details).toBe("bad app_id");
    expect(status.metadata?.getMap()).toEqual({ "x-field": "app_id", "x-trailer": "t" });
  });
});

describe("headersToMetadata", () => {
  it("decodes -bin values and drops what grpc-js cannot carry instead of throwing", () => {
    const headers = new Headers({
      "x-ok": "fine",
      "x-data-bin": Buffer.from([1, 2, 255]).toString("base64"),
    });
    headers.set("x-bad", "caf\u00e9");
    const md = headersToMetadata(headers);
    expect(md.get("x-ok")).toEqual(["fine"]);
    expect(md.get("x-data-bin")).toEqual([Buffer.from([1, 2, 255])]);
    expect(md.get("x-bad")).toEqual([]);
  });
});
