import { Secret } from "../shared/secret.js";
import { type BrokerConfig, ConfigError, ConfigErrors } from "./config.js";

type AppEntry = BrokerConfig["apps"][number];

/** What a reload from `running` to `next` changes (see {@link configChanges}). */
export interface ConfigChanges {
  /**
   * The apps to serve from now on, in `next`'s order: the running object of
   * every app that did not change (so what hangs off it, such as its
   * credential rules, stays), `next`'s object for an added or changed one.
   */
  readonly apps: readonly AppEntry[];
  readonly added: readonly string[];
  readonly removed: readonly string[];
  /** Changed apps with the keys that changed (`secret`, `tokenMode`, …), never their values. */
  readonly changed: readonly { readonly app: string; readonly keys: readonly string[] }[];
  /** Keys outside `apps` whose new value only a restart applies (e.g. `listen.grpc.port`). */
  readonly restartNeeded: readonly string[];
}

/**
 * Compares a validated new config with the running one. Apps can change at
 * runtime; every other setting (listeners, store, TLS, security, quota…)
 * is built into long-lived components at start, so a change there is only
 * reported. Throws ConfigErrors when `next` cannot be applied to a running
 * broker: an app id that now names another WeChat account (its stored
 * credentials belong to the old one).
 */
export function configChanges(running: BrokerConfig, next: BrokerConfig): ConfigChanges {
  const before = new Map(running.apps.map((a) => [a.id, a]));
  const refused: ConfigError[] = [];
  const added: string[] = [];
  const changed: { app: string; keys: string[] }[] = [];
  const apps = next.apps.map((app, index) => {
    const old = before.get(app.id);
    if (!old) {
      added.push(app.id);
      return app;
    }
    if (old.appid !== app.appid) {
      refused.push(
        new ConfigError(
          `apps[${index}].appid`,
          `app '${app.id}' is served for another WeChat appid; a running broker cannot move an app id ` +
            "to another account (credentials stored under it belong to the old one). Give the new " +
            "account a new app id, or restore this appid",
        ),
      );
      return old;
    }
    const keys = differences(old, app, "");
    if (keys.length === 0) return old;
    changed.push({ app: app.id, keys });
    return app;
  });
  if (refused.length > 0) throw new ConfigErrors(refused);
  const kept = new Set(next.apps.map((a) => a.id));
  const { apps: _running, ...runningRest } = running;
  const { apps: _next, ...nextRest } = next;
  return {
    apps,
    added,
    removed: running.apps.filter((a) => !kept.has(a.id)).map((a) => a.id),
    changed,
    restartNeeded: differences(runningRest, nextRest, ""),
  };
}

/** The keys (`a.b[0].c`) whose values differ; Secrets compare by value, which is never returned. */
function differences(a: unknown, b: unknown, key: string): string[] {
  if (a instanceof Secret || b instanceof Secret) {
    const same = a instanceof Secret && b instanceof Secret && a.reveal() === b.reveal();
    return same ? [] : [key];
  }
  if (Array.isArray(a) && Array.isArray(b)) {
    if (a.length !== b.length) return [key];
    return a.flatMap((v, i) => differences(v, b[i], `${key}[${i}]`));
  }
  if (isRecord(a) && isRecord(b)) {
    const names = new Set([...Object.keys(a), ...Object.keys(b)]);
    return [...names].flatMap((n) => differences(a[n], b[n], key === "" ? n : `${key}.${n}`));
  }
  return Object.is(a, b) ? [] : [key];
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}
