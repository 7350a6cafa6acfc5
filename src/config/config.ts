import type { z } from "zod";
import type { Frozen } from "../shared/schema.js";
import type { configSchema } from "./schema/root.js";

/**
 * The config's types, inferred from its schema (src/config/schema): what
 * the schema accepts and what the broker reads can never drift apart.
 */

/** The broker's whole configuration, validated and frozen at start-up (and on each reload). */
export type BrokerConfig = Frozen<z.output<ReturnType<typeof configSchema>>>;

export type StoreConfig = BrokerConfig["store"];
export type SecurityConfig = BrokerConfig["security"];
export type WebhookConfig = BrokerConfig["alerts"]["webhooks"][number];
export type EmailAlertConfig = NonNullable<BrokerConfig["alerts"]["email"]>;

/** A config problem, naming the key at fault (e.g. `apps[1].secret.env`). */
export class ConfigError extends Error {
  constructor(
    readonly key: string,
    problem: string,
  ) {
    super(`config key '${key}': ${problem}`);
    this.name = "ConfigError";
  }
}

/**
 * Every problem found in one config document, so an operator fixes them all
 * in one edit instead of one per start. `key` is the first problem's key.
 */
export class ConfigErrors extends ConfigError {
  constructor(readonly errors: readonly ConfigError[]) {
    super(errors[0]?.key ?? "(root)", "");
    this.name = "ConfigErrors";
    this.message =
      errors.length === 1
        ? (errors[0]?.message ?? "")
        : `${errors.length} problems:\n${errors.map((e) => `  - ${e.message}`).join("\n")}`;
  }
}
