export {
  CHINA_UTC_OFFSET_MS,
  chinaDate,
  chinaDayStart,
  DAY_MS,
  nextChinaDay,
} from "./china-day.js";
export { MemoryQuotaLedger, type MemoryQuotaLedgerOptions } from "./memory-quota-ledger.js";
export { QuotaKeys } from "./quota-keys.js";
export {
  type Budget,
  BudgetTable,
  CLEAR_QUOTA_GAP_MS,
  DEFAULT_BUDGETS,
  DEFAULT_SCHEDULED_RESERVE,
  type EndpointBudgets,
  FORCE_REFRESH_GAP_MS,
  isQuotaEndpoint,
  QUOTA_ENDPOINTS,
  type QuotaBudgets,
  type QuotaDecision,
  type QuotaEndpoint,
  type QuotaLedger,
  type QuotaPurpose,
  type QuotaRefusal,
  type QuotaUsage,
} from "./quota-ledger.js";
export { RedisQuotaLedger, type RedisQuotaLedgerOptions } from "./redis-quota-ledger.js";
