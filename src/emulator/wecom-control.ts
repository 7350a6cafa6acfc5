import { checkWecomLimits } from "./config.js";
import { EmulatorControlError } from "./control-types.js";
import type { EmulatorState } from "./state.js";
import type { WecomControl, WecomLimits } from "./wecom-types.js";

/** The WeCom part of the control surface (R28–R32, R30's early invalidation). */
export function createWecomControl(state: EmulatorState): WecomControl {
  const corps = state.wecomCorps;
  const tokens = state.wecomTokens;
  return {
    addWecomCorp: (corp) => corps.addCorp(corp),
    removeWecomCorp(corpid) {
      corps.removeCorp(corpid);
      tokens.killApp(corpid, undefined, state.now());
    },
    listWecomApps: (corpid) => corps.list(corpid),
    addWecomApp: (corpid, app) => void corps.addApp(corpid, app),
    updateWecomApp(corpid, app, patch) {
      if (corps.updateApp(corpid, app, patch)) tokens.killApp(corpid, app, state.now());
    },
    removeWecomApp(corpid, app) {
      corps.removeApp(corpid, app);
      tokens.killApp(corpid, app, state.now());
    },
    invalidateWecomToken(value) {
      if (typeof value !== "string" || !tokens.kill(value, state.now())) {
        throw new EmulatorControlError(404, "no live WeCom token has this value");
      }
    },
    wecomTokens: () => tokens.live(state.now()),
    wecomTickets: () => tokens.liveTickets(state.now()),
    wecomLimits: () => state.wecomLimiter.limits,
    setWecomLimits(patch: Partial<WecomLimits>) {
      if (typeof patch !== "object" || patch === null) {
        throw new EmulatorControlError(400, "limits must be an object");
      }
      try {
        checkWecomLimits(patch);
      } catch (error) {
        throw new EmulatorControlError(400, (error as Error).message);
      }
      state.wecomLimiter.set(patch);
    },
  };
}
