import { list, oneOf, section } from "../../shared/schema.js";
import { type ConfigEnvironment, inlineOrSecretRef } from "./secret.js";

/** Where alerts are posted; WeCom robot URLs carry a key, so a URL may come from env or a file. */
export function alertsSchema(environment: ConfigEnvironment) {
  const webhook = section({
    url: inlineOrSecretRef(environment).refine((url) => {
      if (!URL.canParse(url.reveal())) return false;
      return ["http:", "https:"].includes(new URL(url.reveal()).protocol);
    }, "expected an http(s) URL"),
    format: oneOf(["generic", "wecom"]).prefault("generic"),
  });
  return section({ webhooks: list(webhook).prefault([]) });
}
