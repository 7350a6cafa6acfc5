import type { AccountTypeSpec } from "../../core/kind-registry.js";

/**
 * Consecutive allowed quota clears must be at least this far apart: a clear
 * zeroes every counter, so a second one minutes later only burns one of the
 * month's 10.
 */
const CLEAR_QUOTA_GAP_MS = 10 * 60_000;

/** clear_quota/v2 belongs to the account: WeChat allows 10 clears a month, console clears included. */
const clearQuota = {
  name: "clear_quota",
  segment: "clear_quota",
  budget: 3,
  gap: { ms: CLEAR_QUOTA_GAP_MS, refusal: "clear_gap" },
  keptOnClear: true,
} as const;

export const officialAccount: AccountTypeSpec = {
  name: "official_account",
  label: "official account",
  endpoints: [clearQuota],
};

export const miniProgram: AccountTypeSpec = {
  name: "mini_program",
  label: "mini program",
  endpoints: [clearQuota],
};
