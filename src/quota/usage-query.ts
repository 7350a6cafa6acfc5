import { KINDS } from "../credentials/index.js";
import type { UsageQuery } from "./quota-ledger.js";

/**
 * What status and metrics ask the ledger about an app: the endpoints its
 * account type can call (a WeCom app has no getticket, an official account
 * no gettoken) and the group it shares windowed budgets with (its corp).
 */
export function usageQueryOf(app: { readonly type: string; readonly appid: string }): UsageQuery {
  const group = KINDS.accountType(app.type)?.quotaGroup?.(app);
  return {
    endpoints: KINDS.quotaEndpointsOf(app.type),
    ...(group === undefined ? {} : { group }),
  };
}
