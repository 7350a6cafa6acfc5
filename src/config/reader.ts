import { ConfigError } from "./config.js";

/**
 * Reads one level of a parsed YAML document, remembering the key path for
 * error messages and rejecting keys it was never asked about (typos).
 */
export class ObjectReader {
  readonly #seen = new Set<string>();
  readonly #obj: Record<string, unknown>;

  constructor(
    readonly path: string,
    value: unknown,
  ) {
    if (value === undefined || value === null) value = {};
    if (typeof value !== "object" || Array.isArray(value))
      throw new ConfigError(path || "(root)", "expected a mapping");
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
    if (typeof v !== "string" || v === "")
      throw new ConfigError(this.key(name), "expected a non-empty string");
    return v;
  }

  oneOf<T extends string>(name: string, allowed: readonly T[], fallback?: T): T {
    const v = this.string(name, fallback);
    if (!(allowed as readonly string[]).includes(v)) {
      throw new ConfigError(this.key(name), `expected one of ${allowed.join(", ")}, got '${v}'`);
    }
    return v as T;
  }

  number(name: string, fallback: number, min: number, max: number): number {
    const v = this.raw(name);
    if (v === undefined || v === null) return fallback;
    const n = typeof v === "string" && v.trim() !== "" ? Number(v) : v;
    if (typeof n !== "number" || !Number.isFinite(n) || n < min || n > max) {
      throw new ConfigError(
        this.key(name),
        `expected a number from ${min} to ${max}, got ${JSON.stringify(v)}`,
      );
    }
    return n;
  }

  boolean(name: string, fallback: boolean): boolean {
    const v = this.raw(name);
    if (v === undefined || v === null) return fallback;
    if (v === true || v === "true") return true;
    if (v === false || v === "false") return false;
    throw new ConfigError(this.key(name), `expected true or false, got ${JSON.stringify(v)}`);
  }

  array(name: string): unknown[] {
    const v = this.raw(name);
    if (v === undefined || v === null) return [];
    if (!Array.isArray(v)) throw new ConfigError(this.key(name), "expected a list");
    return v;
  }

  /** The keys present in the document (for maps keyed by name). */
  keys(): string[] {
    return Object.keys(this.#obj);
  }

  /** Throws for any key present in the document that was never read. */
  done(): void {
    for (const k of Object.keys(this.#obj)) {
      if (!this.#seen.has(k))
        throw new ConfigError(this.key(k), "unknown key (check the spelling against the README)");
    }
  }
}
