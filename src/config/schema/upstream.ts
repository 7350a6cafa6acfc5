import { z } from "zod";
import { num, section, text } from "../../shared/schema.js";

/** An http(s) URL, without trailing slashes. */
export function httpUrl() {
  return text().transform((v, ctx) => {
    if (!URL.canParse(v) || !["http:", "https:"].includes(new URL(v).protocol)) {
      ctx.addIssue({ code: "custom", message: `expected an http(s) URL, got '${v}'` });
      return z.NEVER;
    }
    return v.replace(/\/+$/, "");
  });
}

/** WeChat's API, or the emulator standing in for it. */
export function upstreamSchema() {
  return section({
    baseUrl: httpUrl().prefault("https://api.weixin.qq.com"),
    /** WeCom's own host (企业微信), separate from the official-account API. */
    wecomBaseUrl: httpUrl().prefault("https://qyapi.weixin.qq.com"),
    timeoutMs: num(100, 120_000).prefault(5000),
  });
}
