import { ConfigError, ConfigErrors } from "./config.js";

/** Problems found so far by the validation running now (parsing is synchronous). */
let collected: ConfigError[] | undefined;

/**
 * Runs a whole validation, collecting every ConfigError instead of stopping
 * at the first; throws them together (ConfigErrors) if there were any.
 */
export function collectConfigErrors<T>(validate: () => T): T {
  const outer = collected;
  const errors: ConfigError[] = [];
  collected = errors;
  try {
    const result = attempt(validate, undefined);
    if (errors.length > 0) throw new ConfigErrors(errors);
    return result as T;
  } finally {
    collected = outer;
  }
}

/** Records a problem: thrown when no collection runs, else kept for the final report. */
export function report(error: ConfigError): void {
  if (!collected) throw error;
  collected.push(error);
}

/**
 * Runs one part of the validation (a section, an app, a client); if it
 * fails, records why and goes on with `fallback`, so later parts still
 * report their own problems.
 */
export function attempt<T>(part: () => T, fallback: T): T {
  try {
    return part();
  } catch (err) {
    if (!(err instanceof ConfigError) || !collected) throw err;
    if (err instanceof ConfigErrors) collected.push(...err.errors);
    else collected.push(err);
    return fallback;
  }
}

/** True once the running validation has found a problem. */
export function hasConfigErrors(): boolean {
  return (collected?.length ?? 0) > 0;
}

/**
 * Reads one level of a parsed YAML document, remembering the key path for
 * error messages and rejecting keys it was never asked about (typos).
 * Inside collectConfigErrors, a bad value that has a default is reported and
 * replaced by the default; a bad required value still throws (to the
 * enclosing `attempt`).
 */
export class ObjectReader {
  readonly #seen = new Set<string>();
  readonly #obj: Record<string, unknown>;

  constructor(
    readonly path: string,
    value: unknown,
  ) {
    if (value === undefined || value === null) value = {};
    if (typeof value !== "object" || Array.isArray(value)) {
      report(new ConfigError(path || "(root)", "expected a mapping"));
      value = {};
    }
    this.#obj = value as Record<string, unknown>;
  }

  key(name: string): string {
    return this.path ? `${this.path}.${name}` : name;
  }

  raw(name: string): unknown {
    this.#seen.add(name);
    return this.#obj[name];
  }

  object(name: string): ObjectReader {
    return new ObjectReader(this.key(name), this.raw(name));
  }

  string(name: string, fallback?: string): string {
    const v = this.raw(name);
    if (v === undefined || v === null) {
      if (fallback !== undefined) return fallback;
      throw new ConfigError(this.key(name), "is required");
    }
    if (typeof v !== "string" || v === "") {
      const error = new ConfigError(this.key(name), "expected a non-empty string");
      if (fallback === undefined) throw error;
      report(error);
      return fallback;
    }
    return v;
  }

  oneOf<T extends string>(name: string, allowed: readonly T[], fallback?: T): T {
    const v = this.string(name, fallback);
    if (!(allowed as readonly string[]).includes(v)) {
      const error = new ConfigError(
        this.key(name),
        `expected one of ${allowed.join(", ")}, got '${v}'`,
      );
      if (fallback === undefined) throw error;
      report(error);
      return fallback;
    }
    return v as T;
  }

  number(name: string, fallback: number, min: number, max: number): number {
    const v = this.raw(name);
    if (v === undefined || v === null) return fallback;
    const n = typeof v === "string" && v.trim() !== "" ? Number(v) : v;
    if (typeof n !== "number" || !Number.isFinite(n) || n < min || n > max) {
      report(
        new ConfigError(
          this.key(name),
          `expected a number from ${min} to ${max}, got ${JSON.stringify(v)}`,
        ),
      );
      return fallback;
    }
    return n;
  }

  boolean(name: string, fallback: boolean): boolean {
    const v = this.raw(name);
    if (v === undefined || v === null) return fallback;
    if (v === true || v === "true") return true;
    if (v === false || v === "false") return false;
    report(new ConfigError(this.key(name), `expected true or false, got ${JSON.stringify(v)}`));
    return fallback;
  }

  array(name: string): unknown[] {
    const v = this.raw(name);
    if (v === undefined || v === null) return [];
    if (!Array.isArray(v)) {
      report(new ConfigError(this.key(name), "expected a list"));
      return [];
    }
    return v;
  }

  /** The keys present in the document (for maps keyed by name). */
  keys(): string[] {
    return Object.keys(this.#obj);
  }

  /** Reports every key present in the document that was never read. */
  done(): void {
    for (const k of Object.keys(this.#obj)) {
      if (!this.#seen.has(k))
        report(new ConfigError(this.key(k), "unknown key (check the spelling against the README)"));
    }
  }
}
