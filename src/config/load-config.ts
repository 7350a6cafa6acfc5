import { readFileSync } from "node:fs";
import { parse } from "yaml";
import { type BrokerConfig, ConfigError } from "./config.js";
import { parseConfig } from "./parse-config.js";

/**
 * Environment variables that override single config keys, for container
 * deployments where the file is baked into the image.
 */
export const ENV_OVERRIDES: Readonly<Record<string, readonly string[]>> = {
  TOKEN_BROKER_GRPC_LISTEN: ["listen", "grpc"],
  TOKEN_BROKER_CONNECT_LISTEN: ["listen", "connect"],
  TOKEN_BROKER_UPSTREAM_BASE_URL: ["upstream", "baseUrl"],
  TOKEN_BROKER_UPSTREAM_TIMEOUT_MS: ["upstream", "timeoutMs"],
  TOKEN_BROKER_LOG_LEVEL: ["log", "level"],
  TOKEN_BROKER_SHUTDOWN_GRACE_MS: ["shutdown", "graceMs"],
  TOKEN_BROKER_SHUTDOWN_PRE_STOP_DELAY_MS: ["shutdown", "preStopDelayMs"],
  TOKEN_BROKER_STORE_TYPE: ["store", "type"],
  TOKEN_BROKER_REDIS_URL: ["store", "url"],
};

/** Reads the YAML file, applies env overrides and validates. */
export function loadConfig(
  path: string,
  env: Readonly<Record<string, string | undefined>>,
): BrokerConfig {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    throw new ConfigError(
      "(file)",
      `cannot read config file ${path}: ${(err as NodeJS.ErrnoException).code ?? err}`,
    );
  }
  let document: unknown;
  try {
    document = parse(text) ?? {};
  } catch (err) {
    throw new ConfigError("(file)", `${path} is not valid YAML: ${(err as Error).message}`);
  }
  return parseConfig(applyEnvOverrides(document, env), {
    env,
    readFile: (p) => readFileSync(p, "utf8"),
  });
}

export function applyEnvOverrides(
  document: unknown,
  env: Readonly<Record<string, string | undefined>>,
): unknown {
  if (typeof document !== "object" || document === null || Array.isArray(document)) return document;
  const copy = structuredClone(document) as Record<string, unknown>;
  for (const [name, [section, key]] of Object.entries(ENV_OVERRIDES) as [
    string,
    [string, string],
  ][]) {
    const value = env[name];
    if (value === undefined || value === "") continue;
    const existing = copy[section];
    const target =
      typeof existing === "object" && existing !== null
        ? (existing as Record<string, unknown>)
        : {};
    target[key] = value;
    copy[section] = target;
  }
  return copy;
}
