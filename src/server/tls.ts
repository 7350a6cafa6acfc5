import { X509Certificate } from "node:crypto";
import { readFile } from "node:fs/promises";
import * as tls from "node:tls";
import * as grpc from "@grpc/grpc-js";
import type { Logger } from "../shared/logger.js";

type IdentityUpdate = grpc.experimental.IdentityCertificateUpdate;
type CaUpdate = grpc.experimental.CaCertificateUpdate;

/** How often the certificate files are re-read unless told otherwise. */
export const DEFAULT_TLS_RELOAD_MS = 10_000;

/**
 * TLS for a listener. The files are read at start (a missing or unusable file
 * fails the start) and re-read every `reloadIntervalMs`; new content is used
 * for new connections without a restart, open connections keep theirs.
 */
export interface TlsOptions {
  /** PEM certificate chain of the server, leaf first. */
  readonly certFile: string;
  /** PEM private key of that certificate. */
  readonly keyFile: string;
  /**
   * PEM bundle of the CA(s) client certificates must chain to. Given, the
   * server asks clients for a certificate, and handlers see the identity of
   * one that verifies (`Peer.tlsIdentity`).
   */
  readonly clientCaFile?: string;
  /**
   * Refuse connections without a client certificate that verifies against
   * `clientCaFile` (mutual TLS). Needs `clientCaFile`. Without it a client
   * certificate is optional, and one that does not verify is treated like none.
   */
  readonly requireClientCert?: boolean;
  /** How often the files are re-read, in ms; default {@link DEFAULT_TLS_RELOAD_MS}. */
  readonly reloadIntervalMs?: number;
}

/** The content of the TLS files, checked to be usable. */
export interface TlsMaterial {
  readonly cert: Buffer;
  readonly key: Buffer;
  /** Only when `clientCaFile` is configured. */
  readonly ca?: Buffer;
}

/** Throws if `options` cannot work, before any file is read. */
export function checkTlsOptions(options: TlsOptions): void {
  if (options.requireClientCert && options.clientCaFile === undefined) {
    throw new Error("tls.requireClientCert needs tls.clientCaFile");
  }
  const interval = options.reloadIntervalMs;
  if (interval !== undefined && !(Number.isFinite(interval) && interval > 0)) {
    throw new Error(`tls.reloadIntervalMs must be a positive number of ms, not ${interval}`);
  }
}

/** Reads and checks the TLS files once; the error names the file at fault. */
export async function loadTlsMaterial(options: TlsOptions): Promise<TlsMaterial> {
  checkTlsOptions(options);
  const read = async (file: string, what: string) => {
    try {
      return await readFile(file);
    } catch (err) {
      throw new Error(`cannot read the TLS ${what} ${file}: ${(err as Error).message}`);
    }
  };
  const [cert, key, ca] = await Promise.all([
    read(options.certFile, "certificate"),
    read(options.keyFile, "private key"),
    options.clientCaFile === undefined ? undefined : read(options.clientCaFile, "client CA"),
  ]);
  try {
    checkIdentity(cert, key);
  } catch (err) {
    throw new Error(
      `unusable TLS certificate ${options.certFile} / key ${options.keyFile}: ${(err as Error).message}`,
    );
  }
  if (ca === undefined) return { cert, key };
  try {
    checkCaBundle(ca);
  } catch (err) {
    throw new Error(`unusable TLS client CA ${options.clientCaFile}: ${(err as Error).message}`);
  }
  return { cert, key, ca };
}

/** Throws unless `cert` and `key` are PEM and belong together. */
function checkIdentity(cert: Buffer, key: Buffer): void {
  // Parses both and checks that the key matches the certificate.
  tls.createSecureContext({ cert, key });
}

const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g;

/** Throws unless `ca` holds at least one certificate and nothing unparsable. */
function checkCaBundle(ca: Buffer): void {
  // createSecureContext accepts a CA bundle without any certificate in it.
  const blocks = ca.toString("latin1").match(PEM_CERTIFICATE) ?? [];
  if (blocks.length === 0) throw new Error("no PEM certificate found");
  for (const block of blocks) new X509Certificate(block);
}

/**
 * The TLS files of one listener, re-read every `reloadIntervalMs` while
 * someone listens. Both listeners subscribe with {@link onChange} and pass
 * the material to their TLS acceptor's `setSecureContext`.
 *
 * The reading is grpc-js' `FileWatcherCertificateProvider`. This class adds
 * what that lacks: it passes on only content that changed and is usable (the
 * file watcher reports a file it cannot read as `null`). A missing,
 * half-written or mismatched file is logged (once per distinct problem) and
 * the last good certificate stays in use.
 */
export class ReloadingTlsFiles {
  readonly #files: FileWatcherConfig;
  readonly #logger: Logger;
  readonly #watcher: grpc.experimental.FileWatcherCertificateProvider;
  #identity: IdentityUpdate;
  #ca: CaUpdate | undefined;
  readonly #changeListeners = new Set<(material: TlsMaterial) => void>();
  #subscribed = false;
  #closed = false;
  /** Per kind, the problem last logged, so a bad file is reported once, not every poll. */
  readonly #problems = new Map<"identity" | "ca", string>();
  #changeQueued = false;

  constructor(options: TlsOptions, initial: TlsMaterial, logger: Logger) {
    checkTlsOptions(options);
    this.#files = {
      certificateFile: options.certFile,
      privateKeyFile: options.keyFile,
      caCertificateFile: options.clientCaFile,
      refreshIntervalMs: options.reloadIntervalMs ?? DEFAULT_TLS_RELOAD_MS,
    };
    this.#logger = logger;
    this.#watcher = new grpc.experimental.FileWatcherCertificateProvider(this.#files);
    this.#identity = { certificate: initial.cert, privateKey: initial.key };
    this.#ca = initial.ca && { caCertificate: initial.ca };
  }

  /** Whether a client CA is configured (clients are then asked for certificates). */
  get hasClientCa(): boolean {
    return this.#files.caCertificateFile !== undefined;
  }

  /** The content in use. */
  current(): TlsMaterial {
    const { certificate: cert, privateKey: key } = this.#identity;
    return this.#ca ? { cert, key, ca: this.#ca.caCertificate } : { cert, key };
  }

  /**
   * Calls `listener` with the whole material after each usable change (once
   * even if several files changed in one read). Returns an unsubscribe function.
   */
  onChange(listener: (material: TlsMaterial) => void): () => void {
    this.#changeListeners.add(listener);
    this.#update();
    return () => {
      this.#changeListeners.delete(listener);
      this.#update();
    };
  }

  /** Stops reading the files and drops every listener. Idempotent. */
  close(): void {
    this.#closed = true;
    this.#changeListeners.clear();
    this.#update();
  }

  /** Reads the files while anyone listens, and not otherwise. */
  #update(): void {
    const wanted = !this.#closed && this.#changeListeners.size > 0;
    if (wanted === this.#subscribed) return;
    this.#subscribed = wanted;
    if (wanted) {
      this.#watcher.addIdentityCertificateListener(this.#onIdentity);
      if (this.hasClientCa) this.#watcher.addCaCertificateListener(this.#onCa);
    } else {
      this.#watcher.removeIdentityCertificateListener(this.#onIdentity);
      if (this.hasClientCa) this.#watcher.removeCaCertificateListener(this.#onCa);
    }
  }

  readonly #onIdentity = (update: IdentityUpdate | null): void => {
    const files = `${this.#files.certificateFile} / ${this.#files.privateKeyFile}`;
    if (update === null) {
      this.#problem("identity", `cannot read the TLS certificate or key (${files})`);
      return;
    }
    const { certificate, privateKey } = update;
    if (
      certificate.equals(this.#identity.certificate) &&
      privateKey.equals(this.#identity.privateKey)
    ) {
      this.#problems.delete("identity");
      return;
    }
    try {
      checkIdentity(certificate, privateKey);
    } catch (err) {
      this.#problem("identity", `unusable TLS certificate or key (${files})`, err);
      return;
    }
    this.#problems.delete("identity");
    this.#identity = { certificate, privateKey };
    this.#logger.info({ certFile: this.#files.certificateFile }, "reloaded the TLS certificate");
    this.#changed();
  };

  readonly #onCa = (update: CaUpdate | null): void => {
    const file = this.#files.caCertificateFile;
    if (update === null) {
      this.#problem("ca", `cannot read the TLS client CA (${file})`);
      return;
    }
    if (this.#ca?.caCertificate.equals(update.caCertificate)) {
      this.#problems.delete("ca");
      return;
    }
    try {
      checkCaBundle(update.caCertificate);
    } catch (err) {
      this.#problem("ca", `unusable TLS client CA (${file})`, err);
      return;
    }
    this.#problems.delete("ca");
    this.#ca = { caCertificate: update.caCertificate };
    this.#logger.info({ clientCaFile: file }, "reloaded the TLS client CA");
    this.#changed();
  };

  #problem(kind: "identity" | "ca", message: string, err?: unknown): void {
    const key = `${message} ${err instanceof Error ? err.message : ""}`;
    if (this.#problems.get(kind) === key) return;
    this.#problems.set(kind, key);
    this.#logger.error({ err }, `${message}; keeping the previous one`);
  }

  /** Certificate and CA updates of one read arrive in one tick: report them together. */
  #changed(): void {
    if (this.#changeQueued) return;
    this.#changeQueued = true;
    queueMicrotask(() => {
      this.#changeQueued = false;
      const material = this.current();
      for (const listener of this.#changeListeners) listener(material);
    });
  }
}

type FileWatcherConfig = grpc.experimental.FileWatcherCertificateProviderConfig;
