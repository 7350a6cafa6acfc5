import * as crypto from "node:crypto";
import { create } from "@bufbuild/protobuf";
import { Code } from "@connectrpc/connect";
import { beforeEach, describe, expect, it, vi } from "vitest";
import {
  GetTokenRequestSchema,
  TokenKind,
  TokenService,
} from "../../gen/tokenbroker/v1/token_service_pb.js";
import { rpcInterceptors } from "../../src/rpc/interceptors/index.js";
import { hashApiKey, type SecurityPolicy } from "../../src/security/index.js";
import { silentLogger } from "../../src/shared/logger.js";
import { FakeClock } from "../helpers/fake-clock.js";
import { callContext, fakeTokenService, refusal, served } from "./helpers.js";

vi.mock("node:crypto", async (importOriginal) => {
  const actual = await importOriginal<typeof import("node:crypto")>();
  return { ...actual, timingSafeEqual: vi.fn(actual.timingSafeEqual) };
});

const keys = ["key-one-aaaaaaaaaaaaaaaa", "key-two-bbbbbbbbbbbbbbbb", "key-three-cccccccccccccc"];
const policy: SecurityPolicy = {
  clients: [
    ...keys.map((key, i) => ({
      id: `c${i}`,
      apiKeySha256: hashApiKey(key),
      apps: ["*"],
      permissions: ["get" as const],
    })),
    { id: "cert-only", tlsIdentity: "cn", apps: ["*"], permissions: ["get" as const] },
  ],
};

describe("API key comparison", () => {
  const compare = vi.mocked(crypto.timingSafeEqual);
  const tokens = fakeTokenService();
  const wrapped = served(
    TokenService,
    tokens.impl,
    rpcInterceptors({ policy, clock: new FakeClock(), audit: silentLogger() }),
  );
  const call = (key: string) =>
    wrapped.getToken(
      create(GetTokenRequestSchema, { appId: "a", kind: TokenKind.ACCESS_TOKEN }),
      callContext(TokenService.method.getToken, { key }),
    );

  beforeEach(() => {
    compare.mockClear();
  });

  it("compares SHA-256 digests with timingSafeEqual against every keyed client, wherever the match is", async () => {
    for (const [i, key] of keys.entries()) {
      compare.mockClear();
      await call(key);
      expect(tokens.calls.at(-1)?.client).toBe(`c${i}`);
      expect(compare).toHaveBeenCalledTimes(keys.length);
      for (const [a, b] of compare.mock.calls) {
        expect((a as Buffer).length).toBe(32);
        expect((b as Buffer).length).toBe(32);
      }
    }
  });

  it("makes as many comparisons for a wrong key, however close", async () => {
    for (const wrong of ["x", `${keys[0]}x`, keys[1]?.slice(0, -1) ?? ""]) {
      compare.mockClear();
      const err = await refusal(() => call(wrong));
      expect(err.code).toBe(Code.Unauthenticated);
      expect(compare).toHaveBeenCalledTimes(keys.length);
    }
  });

  it("never compares the key itself", async () => {
    await call(keys[2] ?? "");
    for (const args of compare.mock.calls) {
      for (const arg of args) expect(Buffer.from(arg as Buffer).toString()).not.toContain("key-");
    }
  });
});
