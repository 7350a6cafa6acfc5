import { readFileSync } from "node:fs";

/** The environment variable `grants export` and `grants import` read the passphrase from. */
export const PASSPHRASE_ENV = "TOKEN_BROKER_EXPORT_PASSPHRASE";

/** Shorter passphrases are refused for an export: the file holds every user's refresh token. */
export const MIN_PASSPHRASE_LENGTH = 12;

/** A missing, unreadable or too short passphrase; reported like a usage error. */
export class PassphraseError extends Error {}

/**
 * The passphrase of a grants file: from `file` (its first line, so an editor's
 * newline does not count) or else the environment; never from the command
 * line, where shell history and the process list would keep it.
 */
export function readPassphrase(
  file: string | undefined,
  env: Readonly<Record<string, string | undefined>>,
  purpose: "export" | "import",
): string {
  let passphrase: string;
  if (file !== undefined) {
    try {
      passphrase = readFileSync(file, "utf8").split(/\r?\n/)[0] ?? "";
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
      throw new PassphraseError(`cannot read --passphrase-file ${file}: ${code}`);
    }
    if (passphrase === "") throw new PassphraseError(`--passphrase-file ${file} is empty`);
  } else {
    passphrase = env[PASSPHRASE_ENV] ?? "";
    if (passphrase === "")
      throw new PassphraseError(
        `grants ${purpose} needs a passphrase: --passphrase-file FILE or ${PASSPHRASE_ENV} (never on the command line)`,
      );
  }
  if (purpose === "export" && [...passphrase].length < MIN_PASSPHRASE_LENGTH)
    throw new PassphraseError(
      `the passphrase is too short: at least ${MIN_PASSPHRASE_LENGTH} characters (the file holds users' refresh tokens)`,
    );
  return passphrase;
}
