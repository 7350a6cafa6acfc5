import { EVEN_WITH_ISSUES, list, reportDuplicates, tagged } from "../../shared/schema.js";
import { miniProgramSchema } from "./mini-program.js";
import { officialAccountSchema } from "./official-account.js";
import type { ConfigEnvironment } from "./secret.js";
import { wecomAppSchema } from "./wecom-app.js";

/**
 * The config schema of each account type, one line each: a new type (WeCom,
 * say) adds its schema file and a line here. Each schema has `type` as a
 * literal, which picks it; an app without `type` is an official account.
 */
export const ACCOUNT_SCHEMAS = {
  official_account: officialAccountSchema,
  mini_program: miniProgramSchema,
  wecom: wecomAppSchema,
} as const;

const DEFAULT_ACCOUNT_TYPE = "official_account";

type AccountSchema = ReturnType<(typeof ACCOUNT_SCHEMAS)[keyof typeof ACCOUNT_SCHEMAS]>;

/** The apps the broker manages: each validated by its account type's schema, ids unique. */
export function appsSchema(environment: ConfigEnvironment) {
  const schemas = Object.values(ACCOUNT_SCHEMAS).map((schema) => schema(environment));
  const app = tagged("type", DEFAULT_ACCOUNT_TYPE, schemas as [AccountSchema, ...AccountSchema[]]);
  return list(app).superRefine((apps, ctx) => {
    if (Array.isArray(apps)) reportDuplicates(ctx, apps, "id", (id) => `duplicate app id '${id}'`);
  }, EVEN_WITH_ISSUES);
}
