import { createEmulator, type EmulatorApp, type WecomCorpSpec } from "../emulator/index.js";
import { createLogger } from "../shared/logger.js";
import { UsageError } from "./failure.js";
import { stopOnSignals } from "./lifecycle.js";

export interface EmulatorCommandOptions {
  host: string;
  port: number;
  /** "appid:secret" pairs. */
  apps: string[];
  /** "corpid:agentid:secret" triples; an empty agentid is a corp-level secret (contacts sync …). */
  wecomApps: string[];
  tokenLifetimeSeconds: number;
}

/** `token-broker emulator`: the WeChat emulator alone, for tests, demos and benchmarks. */
export async function runEmulator(options: EmulatorCommandOptions): Promise<void> {
  const logger = createLogger({ base: { component: "emulator" } });
  const apps: EmulatorApp[] = options.apps.map((pair) => {
    const colon = pair.indexOf(":");
    if (colon <= 0 || colon === pair.length - 1)
      throw new UsageError(`--app expects APPID:SECRET, got '${pair}'`);
    return { appid: pair.slice(0, colon), secret: pair.slice(colon + 1) };
  });
  const life = options.tokenLifetimeSeconds;
  const emulator = createEmulator({
    apps,
    tokenLifetimeSeconds: life,
    wecom: { corps: wecomCorps(options.wecomApps), tokenLifetimeSeconds: life },
    logger,
  });
  // The emulator logs "emulator listening" with its URL; its control API is under /_emulator/.
  await emulator.listen(options.port, options.host);
  stopOnSignals(() => emulator.close(), logger);
}

/** `--wecom-app CORPID:AGENTID:SECRET` flags as corps, each with its apps in the order given. */
export function wecomCorps(triples: readonly string[]): WecomCorpSpec[] {
  const corps = new Map<string, WecomCorpSpec>();
  for (const triple of triples) {
    // The secret is last and may itself hold a colon.
    const [corpid = "", agentid = "", ...rest] = triple.split(":");
    const secret = rest.join(":");
    if (corpid === "" || secret === "" || !/^\d*$/.test(agentid))
      throw new UsageError(
        "--wecom-app expects CORPID:AGENTID:SECRET (AGENTID digits, or empty for a corp-level " +
          `secret); got '${triple.split(":").slice(0, 2).join(":")}:…'`,
      );
    const corp = corps.get(corpid) ?? { corpid, apps: [] };
    corps.set(corpid, corp);
    corp.apps.push(agentid === "" ? { secret } : { agentid: Number(agentid), secret });
  }
  return [...corps.values()];
}
