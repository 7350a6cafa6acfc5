import { describe, expect, it } from "vitest";
import { wecomBody } from "../../src/observability/notifiers/webhook-body.js";

describe("wecomBody", () => {
  it("keeps the markdown within WeCom's 4096 bytes without splitting a character", () => {
    const details = Object.fromEntries(
      Array.from({ length: 400 }, (_, i) => [`应用${i}`, "凭证已过期".repeat(3)]),
    );
    const { content } = wecomBody({
      name: "credential_expired",
      state: "firing",
      severity: "warning",
      summary: "many credentials expired",
      details,
      at: 0,
    }).markdown;
    expect(Buffer.byteLength(content)).toBeLessThanOrEqual(4096);
    expect(Buffer.byteLength(content)).toBeGreaterThan(4000);
    expect(content.endsWith("…")).toBe(true);
    expect(content).not.toContain("\uFFFD");
    expect(
      content.startsWith('**<font color="comment">FIRING</font> credential_expired** (warning)'),
    ).toBe(true);
  });
});
