import { z } from "zod";
import type { Secret } from "./secret.js";

/**
 * Building blocks of the config schema (src/config/schema) and of the parts
 * other modules contribute to it (the security policy's clients). Messages
 * are written for the operator editing the YAML; the key is prefixed by
 * whoever reports them (src/config/issues.ts).
 */

/** Deeply read-only, as a parsed config is frozen; secrets stay Secrets. */
export type Frozen<T> = T extends Secret | ((...args: never[]) => unknown)
  ? T
  : T extends readonly (infer U)[]
    ? readonly Frozen<U>[]
    : T extends object
      ? { readonly [K in keyof T]: Frozen<T[K]> }
      : T;

type Payload = { readonly issues: readonly unknown[] };

/**
 * For checks across fields (duplicates, "needs one of"): run even when parts
 * of the value were refused, so every problem is reported in one go. Such a
 * check must read its value defensively.
 */
export const EVEN_WITH_ISSUES = { when: (_: Payload) => true };

/** For cross-checks that read derived values: only on a value with no problem found. */
export const ONLY_WHEN_VALID = { when: (payload: Payload) => payload.issues.length === 0 };

export const UNKNOWN_KEY = "unknown key (check the spelling against the README)";

/** A YAML `key:` left empty reads as null: it means "not set", like an absent key. */
export function mappingInput(value: unknown): unknown {
  if (value === undefined || value === null) return {};
  if (typeof value !== "object" || Array.isArray(value)) return value;
  return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, v === null ? undefined : v]));
}

const mappingError = (iss: { input?: unknown }) =>
  iss.input === undefined ? "is required" : "expected a mapping";

/** A mapping whose keys are all known (a typo is an error, not a silently ignored key). */
export function strictMapping<S extends z.core.$ZodLooseShape>(shape: S) {
  return z.strictObject(shape, { error: mappingError });
}

/** A config section or list item: absent or empty means every key takes its default. */
export function section<S extends z.core.$ZodLooseShape>(shape: S) {
  return z.preprocess(mappingInput, strictMapping(shape));
}

/**
 * A mapping whose `field` picks which of `options` describes it; without the
 * field, `fallback`'s. An unknown value is reported at the field, naming the
 * choices (src/config/issues.ts).
 */
export function tagged<
  const Options extends readonly [z.core.$ZodTypeDiscriminable, ...z.core.$ZodTypeDiscriminable[]],
>(field: string, fallback: string, options: Options) {
  return z.preprocess(
    (value) => {
      const doc = mappingInput(value);
      if (typeof doc !== "object" || doc === null || Array.isArray(doc)) return doc;
      return Reflect.get(doc, field) === undefined ? { ...doc, [field]: fallback } : doc;
    },
    z.discriminatedUnion(field, options),
  );
}

/** A required, non-empty string. */
export function text(what = "a non-empty string") {
  return z
    .string({ error: (iss) => (iss.input === undefined ? "is required" : `expected ${what}`) })
    .min(1, `expected ${what}`);
}

/** Environment overrides arrive as strings: "1500" is the number 1500. */
function numericInput(value: unknown): unknown {
  if (typeof value !== "string" || value.trim() === "") return value;
  const n = Number(value);
  return Number.isFinite(n) ? n : value;
}

/** A number in [min, max] (whole when `integer`). */
export function num(min: number, max: number, integer = false) {
  const what = integer ? "a whole number" : "a number";
  const error = (iss: { input?: unknown }) =>
    iss.input === undefined
      ? "is required"
      : `expected ${what} from ${min} to ${max}, got ${JSON.stringify(iss.input)}`;
  const n = z.number({ error }).min(min, { error }).max(max, { error });
  // Not .int(): its issue stops checks that run even with issues (duplicates) elsewhere.
  return z.preprocess(numericInput, integer ? n.refine(Number.isInteger, { error }) : n);
}

/** true / false (also as the strings an environment variable carries). */
export function bool() {
  return z.preprocess(
    (v) => (v === "true" ? true : v === "false" ? false : v),
    z.boolean({ error: (iss) => `expected true or false, got ${JSON.stringify(iss.input)}` }),
  );
}

/** One of a fixed set of strings. */
export function oneOf<const T extends readonly [string, ...string[]]>(values: T) {
  return z.enum(values, {
    error: (iss) =>
      iss.input === undefined
        ? "is required"
        : `expected one of ${values.join(", ")}, got ${JSON.stringify(iss.input)}`,
  });
}

/** A list (YAML sequence). */
export function list<T extends z.ZodType>(item: T) {
  return z.array(item, {
    error: (iss) => (iss.input === undefined ? "is required" : "expected a list"),
  });
}

/** Hex SHA-256 of an API key, as `token-broker hash-key` prints it; kept lower-case. */
export function sha256Hex() {
  return text()
    .regex(
      /^[0-9a-fA-F]{64}$/,
      "expected 64 hex characters (SHA-256 of the key; see `token-broker hash-key`)",
    )
    .transform((hex) => hex.toLowerCase());
}

/** Reports every entry that occurs twice in `values` at `[index, field]`, naming the entry. */
export function reportDuplicates(
  ctx: z.RefinementCtx,
  values: readonly unknown[],
  field: string,
  problem: (value: string) => string,
  normalise: (value: string) => string = (v) => v,
): void {
  const seen = new Set<string>();
  values.forEach((item, index) => {
    const raw = typeof item === "object" && item !== null ? Reflect.get(item, field) : undefined;
    if (typeof raw !== "string" || raw === "") return;
    const value = normalise(raw);
    if (seen.has(value))
      ctx.addIssue({ code: "custom", message: problem(raw), path: [index, field] });
    seen.add(value);
  });
}
