import { errmsgFor } from "./errors.js";
import { createRid } from "./rid.js";

/**
 * The Content-Type of every WeChat API answer (R1). The `encoding=utf-8`
 * parameter mirrors what WeChat's gateway has been seen to send
 * (unconfirmed); clients must only rely on `application/json`.
 */
export const WECHAT_CONTENT_TYPE = "application/json; encoding=utf-8";

/** What the HTTP layer writes: a complete answer, or nothing at all (a hang). */
export type Reply =
  | { readonly status: number; readonly contentType: string; readonly body: string }
  | { readonly hang: true };

/** An HTTP 200 WeChat answer with this JSON body. */
export function wechatJson(body: unknown): Reply {
  return { status: 200, contentType: WECHAT_CONTENT_TYPE, body: JSON.stringify(body) };
}

/** The R1 error envelope: `{"errcode":N,"errmsg":"<text> rid: xxxxxxxx-xxxxxxxx-xxxxxxxx"}`. */
export function wechatError(errcode: number, nowMs: number, errmsg?: string): Reply {
  const text = errmsg ?? errmsgFor(errcode);
  return wechatJson({ errcode, errmsg: `${text} rid: ${createRid(nowMs)}` });
}

/** A control-plane answer (normal HTTP statuses). */
export function controlJson(status: number, body: unknown): Reply {
  return { status, contentType: "application/json; charset=utf-8", body: JSON.stringify(body) };
}
