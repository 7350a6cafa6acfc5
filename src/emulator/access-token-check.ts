import { type ApiRequest, queryParam } from "./api-request.js";
import { type ApiResult, fail } from "./errors.js";
import type { EmulatorState } from "./state.js";
import type { TokenRecord } from "./token-registry.js";

export type Authorization =
  | { readonly ok: true; readonly token: TokenRecord }
  | { readonly ok: false; readonly result: ApiResult };

/**
 * Validates the `access_token` query parameter of an API that consumes a
 * token (R7–R10): missing → 41001, then the registry's verdict (40001 /
 * 40014 / 42001). Classic and stable tokens are both accepted.
 */
export function authorize(req: ApiRequest, state: EmulatorState): Authorization {
  const value = queryParam(req, "access_token");
  if (value === undefined) return { ok: false, result: fail(41001) };
  const verdict = state.tokens.verdict(value, state.now());
  if (!verdict.valid) return { ok: false, result: fail(verdict.errcode) };
  return { ok: true, token: verdict.record };
}
