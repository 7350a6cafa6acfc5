import { readFileSync, writeFileSync } from "node:fs";
import type { BrokerConfig } from "../config/config.js";
import { loadConfig } from "../config/load-config.js";
import type { CredentialUpdate, TokenStore } from "../core/ports/token-store.js";
import { createStore } from "../create-store.js";
import { systemClock } from "../shared/clock.js";
import { createLogger } from "../shared/logger.js";
import { decodeGrants, encodeGrants, grantKinds } from "./grants-document.js";
import { openGrantsFile, sealGrantsFile } from "./grants-file.js";

/** A refusal worth one clear line (no usage text): a memory store, a file that exists. */
export class GrantsCommandError extends Error {}

export interface GrantsOptions {
  readonly configPath: string;
  readonly passphrase: string;
  readonly env: Readonly<Record<string, string | undefined>>;
}

/**
 * `token-broker grants export`: every user's grant in the configured store,
 * read directly (not through a broker), into a passphrase-sealed file.
 */
export async function exportGrants(o: GrantsOptions & { out: string }): Promise<void> {
  const config = loadConfig(o.configPath, o.env);
  const grants = await withStore(config, "export", async (store) => {
    const all: CredentialUpdate[] = [];
    for (const kind of grantKinds()) for await (const entry of store.entries(kind)) all.push(entry);
    return all;
  });
  const plaintext = encodeGrants(grants, systemClock.now());
  const sealed = await sealGrantsFile(plaintext, o.passphrase);
  plaintext.fill(0);
  try {
    // 0600, and never over an existing file (an earlier backup stays as it was).
    writeFileSync(o.out, sealed, { mode: 0o600, flag: "wx" });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new GrantsCommandError(
      code === "EEXIST"
        ? `${o.out} exists; the export never overwrites a file: choose another name`
        : `cannot write ${o.out}: ${code ?? (err as Error).message}`,
    );
  }
  const byApp: Record<string, number> = {};
  for (const { key } of grants) byApp[key.appId] = (byApp[key.appId] ?? 0) + 1;
  console.log(JSON.stringify({ exported: grants.length, apps: byApp, out: o.out }));
}

/**
 * `token-broker grants import`: opens the whole file first (a wrong
 * passphrase or an altered file writes nothing), then restores each grant
 * by the store's rule: what WeChat issued later wins, and a grant deleted
 * (forgotten, void) at or after the exported version stays deleted.
 */
export async function importGrants(o: GrantsOptions & { in: string }): Promise<void> {
  let file: Buffer;
  try {
    file = readFileSync(o.in);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    throw new GrantsCommandError(`cannot read ${o.in}: ${code}`);
  }
  const plaintext = await openGrantsFile(file, o.passphrase);
  const { grants, exportedAt } = decodeGrants(plaintext);
  plaintext.fill(0);
  const config = loadConfig(o.configPath, o.env);
  const counts = { imported: 0, unchanged: 0, keptNewer: 0, refused: 0, expired: 0 };
  await withStore(config, "import", async (store) => {
    for (const { key, credential } of grants) {
      // A grant that can no longer be used or renewed would only be purged.
      if (Math.max(credential.expiresAt, credential.renewableUntil ?? 0) <= systemClock.now()) {
        counts.expired++;
        continue;
      }
      const result = await store.restore(key, credential);
      if (result.written) counts.imported++;
      else if (result.current === undefined) counts.refused++;
      else if (result.current.value === credential.value) counts.unchanged++;
      else counts.keptNewer++;
    }
  });
  console.log(JSON.stringify({ exportedAt, grants: grants.length, ...counts }));
}

async function withStore<T>(
  config: BrokerConfig,
  action: "export" | "import",
  run: (store: TokenStore) => Promise<T>,
): Promise<T> {
  if (config.store.type === "memory")
    throw new GrantsCommandError(
      `the config's store is memory: it lives inside the broker process and nothing outside it can ${action} its grants; ` +
        "grants export and import work on a redis or sqlite store",
    );
  const stores = createStore(config.store, {
    clock: systemClock,
    // Warnings (unencrypted values, the plaintext window) to stderr; stdout carries the result.
    logger: createLogger({ level: "warn", destination: process.stderr }),
    encryptionKeys: config.security.encryptionKeys,
    ...(config.security.acceptPlaintextUntil === undefined
      ? {}
      : { acceptPlaintextUntil: config.security.acceptPlaintextUntil }),
  });
  try {
    return await run(stores.store);
  } finally {
    await stores.close();
  }
}
