import { create } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { AdminService, GetStatusRequestSchema } from "../../gen/tokenbroker/v1/admin_service_pb.js";
import {
  GetTokenRequestSchema,
  TokenKind,
  TokenService,
} from "../../gen/tokenbroker/v1/token_service_pb.js";
import { rpcInterceptors } from "../../src/rpc/interceptors/index.js";
import { RefusalLog } from "../../src/security/refusal-log.js";
import { FakeClock } from "../helpers/fake-clock.js";
import {
  auditSink,
  type CallOptions,
  callContext,
  fakeAdminService,
  fakeTokenService,
  POLICY,
  refusal,
  served,
} from "./helpers.js";

function setup() {
  const audit = auditSink();
  const clock = new FakeClock();
  const refusals = new RefusalLog({ audit: audit.logger, clock, windowMs: 60_000 });
  const chain = rpcInterceptors({ policy: POLICY, clock, audit: audit.logger, refusals });
  const token = served(TokenService, fakeTokenService().impl, chain);
  const adm = served(AdminService, fakeAdminService().impl, chain);
  const getToken = (appId: string, c: CallOptions = {}) =>
    refusal(() =>
      token.getToken(
        create(GetTokenRequestSchema, { appId, kind: TokenKind.ACCESS_TOKEN }),
        callContext(TokenService.method.getToken, c),
      ),
    );
  const getStatus = (c: CallOptions = {}) =>
    refusal(() =>
      adm.getStatus(
        create(GetStatusRequestSchema, {}),
        callContext(AdminService.method.getStatus, c),
      ),
    );
  return { audit, clock, refusals, getToken, getStatus };
}

describe("refusals in the audit stream", () => {
  it("writes a flood from one peer as one line, then one count per window", async () => {
    const s = setup();
    const junk = "x".repeat(60 * 1024);
    for (let i = 0; i < 500; i++) await s.getToken(junk);
    expect(s.audit.lines()).toEqual([
      expect.objectContaining({ event: "auth_failure", address: "127.0.0.1", method: "GetToken" }),
    ]);
    await s.clock.advance(60_000);
    const lines = s.audit.lines();
    expect(lines).toHaveLength(2);
    expect(lines[1]).toMatchObject({
      event: "auth_failure",
      address: "127.0.0.1",
      method: "GetToken",
      repeated: 499,
      windowMs: 60_000,
    });
    expect(s.audit.text().length).toBeLessThan(1500);
    expect(s.audit.text()).not.toContain("x".repeat(32));

    // Still going: one more line per window; a quiet window ends the count.
    for (let i = 0; i < 20; i++) await s.getToken("shop");
    await s.clock.advance(60_000);
    expect(s.audit.lines().slice(2)).toEqual([expect.objectContaining({ repeated: 20 })]);
    await s.clock.advance(60_000);
    expect(s.audit.lines()).toHaveLength(3);
    await s.getToken("shop");
    expect(s.audit.lines()[3]).toMatchObject({ event: "auth_failure", app: "shop" });
    expect(s.audit.lines()[3]).not.toHaveProperty("repeated");
  });

  it("keeps refusals of another kind, peer or method apart", async () => {
    const s = setup();
    await s.getToken("shop");
    await s.getToken("shop", { peer: "10.1.1.1" });
    await s.getToken("shop", { peer: "192.0.2.1" }); // outside allowCidrs
    await s.getStatus();
    await s.getToken("shop", { key: "not-a-key" });
    expect(s.audit.lines().map((l) => [l.event, l.address, l.method])).toEqual([
      ["auth_failure", "127.0.0.1", "GetToken"],
      ["auth_failure", "10.1.1.1", "GetToken"],
      ["address_denied", "192.0.2.1", "GetToken"],
      ["auth_failure", "127.0.0.1", "GetStatus"],
    ]);
  });

  it("bounds what it tracks: beyond the limit, refusals share one count", async () => {
    const audit = auditSink();
    const clock = new FakeClock();
    const log = new RefusalLog({ audit: audit.logger, clock, windowMs: 1000, maxTracked: 2 });
    for (let i = 0; i < 10; i++)
      log.record({ event: "auth_failure", address: `10.0.0.${i}` }, {}, "m");
    expect(audit.lines().map((l) => l.event)).toEqual([
      "auth_failure",
      "auth_failure",
      "refusals_overflow",
    ]);
    await clock.advance(1000);
    // The 8 refusals beyond the two tracked kinds, none of them written singly.
    expect(audit.lines()[3]).toMatchObject({ event: "refusals_overflow", repeated: 8 });
  });

  it("writes the open counts on close", async () => {
    const s = setup();
    for (let i = 0; i < 3; i++) await s.getToken("shop");
    s.refusals.close();
    expect(s.audit.lines()[1]).toMatchObject({ event: "auth_failure", repeated: 2 });
    expect(s.clock.pending).toBe(0);
  });
});
