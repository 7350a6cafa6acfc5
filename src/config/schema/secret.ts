import { z } from "zod";
import { mappingInput, strictMapping, text } from "../../shared/schema.js";
import { Secret } from "../../shared/secret.js";

/** Where secrets named by the config are read from; injected, so a parse is pure and testable. */
export interface ConfigEnvironment {
  /** Environment variables (for secrets named by `{env: VAR}`). */
  readonly env: Readonly<Record<string, string | undefined>>;
  /** Reads a secret file (for `{file: /path}`). */
  readonly readFile: (path: string) => string;
}

const SECRET_FORMS = "{env: VAR_NAME} or {file: /path}";

const required = (iss: { input?: unknown }, message: string) =>
  iss.input === undefined ? "is required" : message;

/**
 * A secret given as {env: VAR_NAME} or {file: /path}, resolved now into a
 * Secret. Messages name the variable or file, never the value.
 */
export function secretRef({ env, readFile }: ConfigEnvironment) {
  // Not `section`: an absent secret is missing, not a mapping with every key at its default.
  const ref = strictMapping({
    env: text("a variable name").optional(),
    file: text("a file path").optional(),
  });
  return z
    .preprocess((v) => (v === undefined || v === null ? v : mappingInput(v)), ref)
    .superRefine((ref, ctx) => {
      if ((ref.env === undefined) === (ref.file === undefined))
        ctx.addIssue({ code: "custom", message: `give exactly one of ${SECRET_FORMS}` });
    })
    .transform((ref, ctx) => {
      const problem = (key: "env" | "file", message: string) => {
        ctx.addIssue({ code: "custom", message, path: [key] });
        return z.NEVER;
      };
      if (ref.env !== undefined) {
        const value = env[ref.env] ?? "";
        if (value === "")
          return problem("env", `environment variable ${ref.env} is not set or empty`);
        return new Secret(value);
      }
      const file = ref.file ?? "";
      let value: string;
      try {
        value = readFile(file).trim();
      } catch (err) {
        return problem(
          "file",
          `cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? "error"}`,
        );
      }
      if (value === "") return problem("file", `${file} is empty`);
      return new Secret(value);
    });
}

/** An AppSecret: from an env var or a file, never inline in the config. */
export function appSecret(environment: ConfigEnvironment) {
  const inline = z.string().transform((_, ctx) => {
    ctx.addIssue({
      code: "custom",
      message: `inline secrets are not accepted; use ${SECRET_FORMS}`,
    });
    return z.NEVER;
  });
  return z.union([inline, secretRef(environment)], {
    error: (iss) => required(iss, `expected ${SECRET_FORMS}`),
  });
}

/** A value that may be written inline or kept out of the file like a secret (a webhook URL with a key in it). */
export function inlineOrSecretRef(environment: ConfigEnvironment) {
  return z.union([text().transform((v) => new Secret(v)), secretRef(environment)], {
    error: (iss) => required(iss, `expected a URL or ${SECRET_FORMS}`),
  });
}
