import type { ErrcodeTable } from "../../core/kind.js";
import { classifyErrcode, remedyFor } from "../../upstream/wechat-errors.js";

/** The official-account and mini-program APIs' reading of errcodes (facts file §10). */
export const wechatErrcodes: ErrcodeTable = {
  classify: classifyErrcode,
  remedy: remedyFor,
};
