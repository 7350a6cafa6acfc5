import { z } from "zod";
import { bool, list, num, oneOf, section, text } from "../../shared/schema.js";
import { appSecret, type ConfigEnvironment, inlineOrSecretRef } from "./secret.js";

/** An e-mail address as SMTP takes it; display names are not needed here. */
const address = () =>
  text("an e-mail address").regex(/^[^\s@<>]+@[^\s@<>]+$/, "expected an e-mail address");

/**
 * E-mail alerts through an SMTP server. Its password comes from an env var
 * or a file, never inline; TLS is required unless the server is on loopback
 * (`requireTls: false` says so explicitly).
 */
function emailSchema(environment: ConfigEnvironment) {
  return section({
    smtp: section({
      host: text("the SMTP server's host name"),
      port: num(1, 65_535, true).prefault(465),
      /** true: TLS from the first byte (port 465); false: STARTTLS, required unless requireTls is false. */
      secure: bool().prefault(true),
      requireTls: bool().prefault(true),
      user: text().optional(),
      password: appSecret(environment).optional(),
      /** PEM file of the CA that signed the server's certificate, when not a public one. */
      caFile: text("a file path")
        .transform((file, ctx) => {
          try {
            return environment.readFile(file);
          } catch (err) {
            ctx.addIssue({
              code: "custom",
              message: `cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? "error"}`,
            });
            return z.NEVER;
          }
        })
        .optional(),
      timeoutMs: num(1000, 120_000, true).prefault(10_000),
    }).refine((s) => (s.user === undefined) === (s.password === undefined), {
      message: "give both user and password, or neither",
    }),
    from: address(),
    to: list(address()).refine((to) => to.length > 0, "expected at least one address"),
    /** Prefixed to every subject, e.g. the environment's name. */
    subjectPrefix: text().prefault("[token-broker]"),
  });
}

/** Where alerts are posted; WeCom robot URLs carry a key, so a URL may come from env or a file. */
export function alertsSchema(environment: ConfigEnvironment) {
  const webhook = section({
    url: inlineOrSecretRef(environment).refine((url) => {
      if (!URL.canParse(url.reveal())) return false;
      return ["http:", "https:"].includes(new URL(url.reveal()).protocol);
    }, "expected an http(s) URL"),
    format: oneOf(["generic", "wecom"]).prefault("generic"),
  });
  return section({
    webhooks: list(webhook).prefault([]),
    email: z.optional(emailSchema(environment)),
  });
}
