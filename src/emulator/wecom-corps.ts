import { EmulatorControlError } from "./control-types.js";
import { recordLeakCandidate } from "./leak-record.js";
import type { WecomAppInfo, WecomAppPatch, WecomAppSpec, WecomCorpSpec } from "./wecom-types.js";

/** The emulator's mutable view of one WeCom app. */
export interface WecomApp {
  readonly corpid: string;
  /** agentid as a string, or the name of a corp-level app. */
  readonly key: string;
  readonly agentid: number | undefined;
  secret: string;
  trustedIps: string[] | null;
  permitted: boolean | string[];
  disabled: boolean;
}

const bad = (message: string) => new EmulatorControlError(400, message);

/** Corps by corpid, each with its apps by key (agentid or name). */
export class WecomCorps {
  readonly #corps = new Map<string, Map<string, WecomApp>>();

  addCorp(spec: WecomCorpSpec): void {
    if (typeof spec?.corpid !== "string" || spec.corpid === "") {
      throw bad("corpid must be a non-empty string");
    }
    if (!Array.isArray(spec.apps)) throw bad("apps must be an array");
    if (this.#corps.has(spec.corpid)) {
      throw new EmulatorControlError(409, `corp ${spec.corpid} already exists`);
    }
    const apps = new Map<string, WecomApp>();
    for (const app of spec.apps) addTo(apps, spec.corpid, app);
    this.#corps.set(spec.corpid, apps);
  }

  removeCorp(corpid: string): void {
    this.#requireCorp(corpid);
    this.#corps.delete(corpid);
  }

  addApp(corpid: string, spec: WecomAppSpec): WecomApp {
    return addTo(this.#requireCorp(corpid), corpid, spec);
  }

  /** Applies `patch`; returns whether the secret changed (its tokens must die). */
  updateApp(corpid: string, key: string, patch: WecomAppPatch): boolean {
    const app = this.requireApp(corpid, key);
    if (typeof patch !== "object" || patch === null) throw bad("patch must be an object");
    const next = { ...app, ...definedOnly(patch) };
    validate(next);
    const secretChanged = next.secret !== app.secret;
    if (secretChanged) recordLeakCandidate("secret", next.secret);
    app.secret = next.secret;
    app.trustedIps = next.trustedIps === null ? null : [...(next.trustedIps ?? [])];
    app.permitted = Array.isArray(next.permitted) ? [...next.permitted] : next.permitted;
    app.disabled = next.disabled;
    return secretChanged;
  }

  removeApp(corpid: string, key: string): void {
    this.requireApp(corpid, key);
    this.#requireCorp(corpid).delete(key);
  }

  hasCorp(corpid: string): boolean {
    return this.#corps.has(corpid);
  }

  app(corpid: string, key: string): WecomApp | undefined {
    return this.#corps.get(corpid)?.get(key);
  }

  requireApp(corpid: string, key: string): WecomApp {
    const app = this.#requireCorp(corpid).get(key);
    if (!app) throw new EmulatorControlError(404, `unknown app ${key} of corp ${corpid}`);
    return app;
  }

  /** The app of `corpid` whose secret this is. */
  bySecret(corpid: string, secret: string): WecomApp | undefined {
    for (const app of this.#corps.get(corpid)?.values() ?? []) {
      if (app.secret === secret) return app;
    }
    return undefined;
  }

  /** Whether another corp has an app with this secret (40091). */
  secretOfAnotherCorp(corpid: string, secret: string): boolean {
    for (const [id, apps] of this.#corps) {
      if (id === corpid) continue;
      for (const app of apps.values()) if (app.secret === secret) return true;
    }
    return false;
  }

  list(corpid?: string): WecomAppInfo[] {
    if (corpid !== undefined) this.#requireCorp(corpid);
    const out: WecomAppInfo[] = [];
    for (const [id, apps] of this.#corps) {
      if (corpid !== undefined && id !== corpid) continue;
      for (const a of apps.values()) {
        out.push({
          corpid: id,
          app: a.key,
          ...(a.agentid === undefined ? {} : { agentid: a.agentid }),
          trustedIps: a.trustedIps ? [...a.trustedIps] : null,
          permitted: Array.isArray(a.permitted) ? [...a.permitted] : a.permitted,
          disabled: a.disabled,
        });
      }
    }
    return out;
  }

  clear(): void {
    this.#corps.clear();
  }

  #requireCorp(corpid: string): Map<string, WecomApp> {
    const apps = this.#corps.get(corpid);
    if (!apps) throw new EmulatorControlError(404, `unknown corp ${corpid}`);
    return apps;
  }
}

function addTo(apps: Map<string, WecomApp>, corpid: string, spec: WecomAppSpec): WecomApp {
  if (typeof spec !== "object" || spec === null) throw bad("an app must be an object");
  if (spec.agentid !== undefined && !(Number.isInteger(spec.agentid) && spec.agentid > 0)) {
    throw bad("agentid must be a positive integer");
  }
  if (spec.name !== undefined && (typeof spec.name !== "string" || spec.name === "")) {
    throw bad("name must be a non-empty string");
  }
  const key = spec.agentid !== undefined ? String(spec.agentid) : (spec.name ?? "corp");
  if (apps.has(key)) throw new EmulatorControlError(409, `app ${key} of ${corpid} already exists`);
  const app: WecomApp = {
    corpid,
    key,
    agentid: spec.agentid,
    secret: spec.secret,
    trustedIps: spec.trustedIps ? [...spec.trustedIps] : null,
    permitted: Array.isArray(spec.permitted) ? [...spec.permitted] : (spec.permitted ?? true),
    disabled: spec.disabled ?? false,
  };
  validate(app);
  // Leak-scan test hook (no-op unless TOKEN_BROKER_LEAK_RECORD_DIR is set): see leak-record.ts.
  recordLeakCandidate("secret", app.secret);
  apps.set(key, app);
  return app;
}

function validate(app: Omit<WecomApp, "corpid" | "key" | "agentid">): void {
  if (typeof app.secret !== "string" || app.secret === "") {
    throw bad("secret must be a non-empty string");
  }
  const ips = app.trustedIps;
  if (ips !== null && !(Array.isArray(ips) && ips.every((ip) => typeof ip === "string"))) {
    throw bad("trustedIps must be an array of strings or null");
  }
  const p = app.permitted;
  if (typeof p !== "boolean" && !(Array.isArray(p) && p.every((x) => typeof x === "string"))) {
    throw bad("permitted must be a boolean or an array of API paths");
  }
  if (typeof app.disabled !== "boolean") throw bad("disabled must be a boolean");
}

function definedOnly<T extends object>(patch: T): Partial<T> {
  return Object.fromEntries(Object.entries(patch).filter(([, v]) => v !== undefined)) as Partial<T>;
}
