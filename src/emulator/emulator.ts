import { systemClock } from "../shared/clock.js";
import { dispatchApi } from "./api-router.js";
import { resolveConfig } from "./config.js";
import { createControl } from "./control.js";
import { dispatchControl } from "./control-routes.js";
import type { EmulatorControl } from "./control-types.js";
import { HttpServer } from "./http-server.js";
import { OffsetClock } from "./offset-clock.js";
import { EmulatorState } from "./state.js";
import type { EmulatorOptions } from "./types.js";

const CONTROL_PREFIX = "/_emulator/";

export interface Emulator {
  /**
   * Starts serving. Defaults: port 0 (any free port) on 127.0.0.1. Resolves
   * with the base URL, e.g. `http://127.0.0.1:40123`.
   */
  listen(port?: number, host?: string): Promise<{ url: string; port: number }>;
  /** Stops serving; drops hung and delayed requests by closing their sockets. */
  close(): Promise<void>;
  /** The `/_emulator/*` operations, callable in-process. */
  readonly control: EmulatorControl;
}

/**
 * Creates an emulator of WeChat's credential HTTP API (facts §11, R1–R27,
 * R33–R37, R43–R44). Nothing listens until `listen()`; `control` works before that,
 * so tests can set up accounts and faults first. Paths under `/_emulator/`
 * are the control plane (see control-routes.ts); every other path is a
 * WeChat API path (see api-router.ts).
 *
 * All expiries and quota periods are computed from the injected clock at
 * request time; the emulator schedules nothing on it. Only injected latency
 * uses real timers.
 */
export function createEmulator(options: EmulatorOptions = {}): Emulator {
  const config = resolveConfig(options);
  const clock = new OffsetClock(options.clock ?? systemClock);
  const state = new EmulatorState(config, clock);
  const control = createControl(state);
  const server = new HttpServer(async (req, signal) => {
    if (req.path.startsWith(CONTROL_PREFIX) || req.path === "/_emulator") {
      return dispatchControl(req, control);
    }
    return dispatchApi(req, state, signal);
  }, config.logger);

  return {
    control,
    async listen(port = 0, host = "127.0.0.1") {
      const bound = await server.listen(port, host);
      config.logger.info({ url: bound.url, apps: control.listApps().length }, "emulator listening");
      return bound;
    },
    close: () => server.close(),
  };
}
