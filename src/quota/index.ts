export { nextChinaDay } from "./china-day.js";
export { MemoryQuotaLedger } from "./memory-quota-ledger.js";
export {
  CLEAR_QUOTA_GAP_MS,
  DEFAULT_SCHEDULED_RESERVE,
  type EndpointBudgets,
  FORCE_REFRESH_GAP_MS,
  QUOTA_ENDPOINTS,
  type QuotaBudgets,
  type QuotaDecision,
  type QuotaEndpoint,
  type QuotaLedger,
  type QuotaPurpose,
  type QuotaRefusal,
  type UsageQuery,
  WINDOWED,
} from "./quota-ledger.js";
export { RedisQuotaLedger } from "./redis-quota-ledger.js";
export { usageQueryOf } from "./usage-query.js";
