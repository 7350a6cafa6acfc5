import type { SecurityPolicy } from "../security/index.js";
import { Secret } from "../shared/secret.js";
import type { BrokerConfig, SecurityConfig } from "./config.js";
import { CONFIG_MESSAGES, configErrorsOf } from "./issues.js";
import { configSchema } from "./schema/root.js";
import type { ConfigEnvironment } from "./schema/secret.js";

export { plaintextListeners } from "./schema/exposure.js";
export type { ConfigEnvironment };

/**
 * Validates a parsed config document (YAML, env overrides applied) into a
 * frozen BrokerConfig. Pure apart from the injected secret lookups, so a
 * reload can run it on a new document and keep the running config when it
 * throws. Throws ConfigErrors naming every offending key at once.
 */
export function parseConfig(document: unknown, environment: ConfigEnvironment): BrokerConfig {
  const schema = schemas.get(environment) ?? configSchema(environment);
  schemas.set(environment, schema);
  const result = schema.safeParse(document, { error: CONFIG_MESSAGES });
  if (!result.success) throw configErrorsOf(result.error.issues);
  return deepFreeze(result.data);
}

/** Building the schema costs more than a parse: kept per environment (its secrets are read at parse time). */
const schemas = new WeakMap<ConfigEnvironment, ReturnType<typeof configSchema>>();

function deepFreeze<T>(value: T): T {
  if (value && typeof value === "object" && !(value instanceof Secret) && !Object.isFrozen(value)) {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}

/** The part of the security config the request guard enforces (validated by the schema already). */
export function securityPolicyOf(security: SecurityConfig): SecurityPolicy {
  return {
    clients: security.clients,
    ...(security.allowCidrs ? { allowCidrs: security.allowCidrs } : {}),
    ...(security.trustedProxies ? { trustedProxies: security.trustedProxies } : {}),
  };
}
