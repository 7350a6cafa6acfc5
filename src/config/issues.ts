import type { z } from "zod";
import { UNKNOWN_KEY } from "../shared/schema.js";
import { ConfigError, ConfigErrors } from "./config.js";

type Issue = z.core.$ZodIssue;

/** The key an issue names, as an operator reads it in the YAML: `apps[0].secret.env`. */
export function keyOf(path: readonly PropertyKey[]): string {
  let key = "";
  for (const part of path) {
    if (typeof part === "number") key += `[${part}]`;
    else key += key === "" ? String(part) : `.${String(part)}`;
  }
  return key === "" ? "(root)" : key;
}

/** Every problem of a refused document, one ConfigError per key. */
export function configErrorsOf(issues: readonly Issue[]): ConfigErrors {
  return new ConfigErrors(issues.flatMap((issue) => errorsOf(issue, [])));
}

function errorsOf(issue: Issue, prefix: readonly PropertyKey[]): ConfigError[] {
  const path = [...prefix, ...issue.path];
  if (issue.code === "unrecognized_keys")
    return issue.keys.map((k) => new ConfigError(keyOf([...path, k]), UNKNOWN_KEY));
  if (issue.code === "invalid_union") {
    // The alternative the value's shape matched (a mapping, not a string) says what is wrong with it.
    const matched = issue.errors.filter((branch) => !branch.some(isWrongShape));
    if (matched.length === 1 && matched[0])
      return matched[0].flatMap((inner) => errorsOf(inner, path));
  }
  return [new ConfigError(keyOf(path), issue.message)];
}

function isWrongShape(issue: Issue): boolean {
  return issue.code === "invalid_type" && issue.path.length === 0;
}

/**
 * Messages for issues whose schema sets none: a discriminator (`type`) no
 * schema has, a value of the wrong shape.
 */
export const CONFIG_MESSAGES: z.core.$ZodErrorMap = (issue) => {
  if (issue.code === "invalid_union" && "discriminator" in issue && Array.isArray(issue.options)) {
    const input = issue.input as Record<string, unknown> | undefined;
    const got = input?.[String(issue.discriminator)];
    return `expected one of ${issue.options.join(", ")}, got ${JSON.stringify(got)}`;
  }
  if (issue.code === "invalid_type") {
    if (issue.input === undefined) return "is required";
    if (issue.expected === "object") return "expected a mapping";
    if (issue.expected === "array") return "expected a list";
  }
  return undefined;
};
