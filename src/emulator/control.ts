import type {
  AccountFlags,
  EmulatorControl,
  LiveToken,
  RiskState,
  TokenCheck,
} from "./control-types.js";
import { EmulatorControlError } from "./control-types.js";
import { recordLeakCandidate } from "./leak-record.js";
import { createOAuthControl } from "./oauth-control.js";
import { isMeteredPath } from "./quota.js";
import type { EmulatorState } from "./state.js";
import { validUntil } from "./token-registry.js";
import type { Limit, MeteredPath } from "./types.js";
import { createWecomControl } from "./wecom-control.js";

const RISK_STATES: readonly RiskState[] = [
  "none",
  "confirm_required",
  "pending",
  "rejected",
  "blocked",
];

/** The in-process control surface over the emulator's state (R44). */
export function createControl(state: EmulatorState): EmulatorControl {
  const { apps } = state;
  return {
    addApp: (app) => void apps.add(app),
    updateApp: (appid, patch) => apps.update(appid, patch),
    removeApp(appid) {
      apps.remove(appid);
      state.tokens.revokeApp(appid, state.now());
      state.oauthGrants.revokeApp(appid, state.now());
    },
    listApps: () => apps.list(),
    resetSecret(appid, newSecret) {
      if (typeof newSecret !== "string" || newSecret === "") {
        throw new EmulatorControlError(400, "secret must be a non-empty string");
      }
      apps.require(appid).secret = newSecret;
      // Leak-scan test hook (no-op unless TOKEN_BROKER_LEAK_RECORD_DIR is set): see leak-record.ts.
      recordLeakCandidate("secret", newSecret);
      state.tokens.revokeApp(appid, state.now());
    },
    freezeSecret(appid) {
      apps.require(appid).secretFrozen = true;
    },
    unfreezeSecret(appid) {
      apps.require(appid).secretFrozen = false;
    },
    setAccountFlags(appid, flags: Partial<AccountFlags>) {
      const app = apps.require(appid);
      if (flags.tokenForbidden !== undefined)
        app.flags.tokenForbidden = Boolean(flags.tokenForbidden);
      if (flags.accountFrozen !== undefined) app.flags.accountFrozen = Boolean(flags.accountFrozen);
    },
    setIpWhitelist(appid, ips) {
      const app = apps.require(appid);
      if (ips !== null && !(Array.isArray(ips) && ips.every((ip) => typeof ip === "string"))) {
        throw new EmulatorControlError(400, "ips must be an array of strings or null");
      }
      app.ipWhitelist = ips === null ? null : [...ips];
    },
    setRiskState(appid, risk) {
      const app = apps.require(appid);
      if (!RISK_STATES.includes(risk)) {
        throw new EmulatorControlError(400, `risk state must be one of ${RISK_STATES.join(", ")}`);
      }
      app.risk = risk;
    },
    setDailyLimit(appid, endpoint, limit) {
      apps.require(appid);
      state.quota.setDailyLimit(appid, meteredPath(endpoint), checkLimit(limit));
    },
    setMinuteLimit(appid, endpoint, limit) {
      apps.require(appid);
      state.quota.setMinuteLimit(appid, meteredPath(endpoint), checkLimit(limit));
    },
    quota(appid) {
      apps.require(appid);
      return state.quota.snapshot(appid, state.now());
    },
    injectFault: (spec) => state.faults.inject(spec),
    removeFault: (id) => state.faults.remove(id),
    clearFaults: () => state.faults.clear(),
    listFaults: () => state.faults.list(),
    counters: () =>
      state.counters.snapshot((endpoint, appid) =>
        isMeteredPath(endpoint) && apps.get(appid)
          ? state.quota.used(appid, endpoint, state.now())
          : undefined,
      ),
    callCount: (endpoint, appid) => state.counters.count(endpoint, appid),
    resetCounters: () => state.counters.clear(),
    checkToken: (value) => checkToken(state, value),
    liveTokens: (): LiveToken[] => state.slots.live(state.now()),
    now: () => state.now(),
    advanceClock(ms) {
      try {
        return state.clock.advance(ms);
      } catch (error) {
        throw new EmulatorControlError(400, (error as Error).message);
      }
    },
    reset: () => state.reset(),
    ...createOAuthControl(state),
    ...createWecomControl(state),
  };
}

function checkToken(state: EmulatorState, value: string): TokenCheck {
  const verdict = state.tokens.verdict(value, state.now());
  if (!verdict.valid) {
    const r = verdict.record;
    if (!r) return { valid: false, errcode: verdict.errcode };
    return {
      valid: false,
      errcode: verdict.errcode,
      appid: r.appid,
      slot: r.kind,
      expiresAt: r.expiresAt,
      validUntil: validUntil(r),
    };
  }
  const r = verdict.record;
  const role = state.slots.roleOf(r);
  return {
    valid: true,
    appid: r.appid,
    slot: r.kind,
    ...(role ? { role } : {}),
    expiresAt: r.expiresAt,
    validUntil: validUntil(r),
  };
}

function meteredPath(endpoint: unknown): MeteredPath {
  if (!isMeteredPath(endpoint)) {
    throw new EmulatorControlError(400, `endpoint must be a metered path, got ${String(endpoint)}`);
  }
  return endpoint;
}

function checkLimit(limit: unknown): Limit {
  if (limit === null) return null;
  if (typeof limit === "number" && Number.isInteger(limit) && limit >= 0) return limit;
  throw new EmulatorControlError(400, "limit must be an integer ≥ 0 or null");
}
