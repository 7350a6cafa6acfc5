import { inspect } from "node:util";

/**
 * A secret string (an AppSecret) that refuses to be printed: string
 * conversion, JSON and util.inspect all give "[REDACTED]", so a config object
 * logged by mistake leaks nothing. Read it only where it is sent to WeChat.
 */
export class Secret {
  readonly #value: string;

  constructor(value: string) {
    this.#value = value;
  }

  /** The secret itself. Call only at the point of use. */
  reveal(): string {
    return this.#value;
  }

  toString(): string {
    return "[REDACTED]";
  }

  toJSON(): string {
    return "[REDACTED]";
  }

  [inspect.custom](): string {
    return "Secret([REDACTED])";
  }
}
