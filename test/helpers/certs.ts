import { execFile } from "node:child_process";
import { randomBytes, X509Certificate } from "node:crypto";
import { mkdtemp, readFile, rename, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);

/** A certificate and its key, as files and as PEM. */
export interface IssuedCert {
  readonly certFile: string;
  readonly keyFile: string;
  readonly cert: string;
  readonly key: string;
  /** Subject CN. */
  readonly cn: string;
  /** As Node reports it (`X509Certificate.serialNumber`, `getPeerCertificate().serialNumber`). */
  readonly serialNumber: string;
}

/** A throwaway certificate authority. Its `certFile` is what clients and servers trust. */
export interface TestCa extends IssuedCert {
  /** A server certificate for 127.0.0.1 and localhost (SAN), with a fresh random serial. */
  serverCert(cn?: string): Promise<IssuedCert>;
  /** A client certificate (extendedKeyUsage clientAuth) whose subject is CN=`cn`. */
  clientCert(cn: string): Promise<IssuedCert>;
}

/** A temp dir holding throwaway CAs and the certificates they issued. */
export interface TestPki {
  readonly dir: string;
  createCa(name: string): Promise<TestCa>;
  /** Removes the dir and everything in it. */
  cleanup(): Promise<void>;
}

/** Just enough config for `openssl req`, so no system openssl.cnf is involved. */
const REQ_CONFIG = `[req]
distinguished_name = dn
prompt = no
[dn]
[ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[server]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1,DNS:localhost
[client]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = clientAuth
`;

/** P-256 keys: generated in milliseconds, unlike RSA. */
const NEW_KEY = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];

/**
 * A new temp dir to issue throwaway certificates into, with `openssl`.
 * Certificates are valid for two days; names are unique within the dir.
 */
export async function createTestPki(): Promise<TestPki> {
  const dir = await mkdtemp(path.join(tmpdir(), "broker-pki-"));
  const config = path.join(dir, "openssl.cnf");
  await writeFile(config, REQ_CONFIG);
  let counter = 0;
  const openssl = (args: string[]) => run("openssl", args, { cwd: dir, timeout: 10_000 });
  const load = async (certFile: string, keyFile: string, cn: string): Promise<IssuedCert> => {
    const [cert, key] = await Promise.all([readFile(certFile, "utf8"), readFile(keyFile, "utf8")]);
    return {
      certFile,
      keyFile,
      cert,
      key,
      cn,
      serialNumber: new X509Certificate(cert).serialNumber,
    };
  };

  const createCa = async (name: string): Promise<TestCa> => {
    const base = path.join(dir, `ca-${++counter}`);
    await openssl([
      "req",
      "-x509",
      ...NEW_KEY,
      "-config",
      config,
      "-extensions",
      "ca",
      "-subj",
      `/CN=${name}`,
      "-days",
      "2",
      "-keyout",
      `${base}.key`,
      "-out",
      `${base}.pem`,
    ]);
    const ca = await load(`${base}.pem`, `${base}.key`, name);
    const issue = async (cn: string, extensions: "server" | "client"): Promise<IssuedCert> => {
      const leaf = path.join(dir, `${extensions}-${++counter}`);
      await openssl([
        "req",
        "-new",
        ...NEW_KEY,
        "-config",
        config,
        "-subj",
        `/CN=${cn}`,
        "-keyout",
        `${leaf}.key`,
        "-out",
        `${leaf}.csr`,
      ]);
      await openssl([
        "x509",
        "-req",
        "-in",
        `${leaf}.csr`,
        "-CA",
        ca.certFile,
        "-CAkey",
        ca.keyFile,
        "-set_serial",
        `0x${randomSerial()}`,
        "-days",
        "2",
        "-extfile",
        config,
        "-extensions",
        extensions,
        "-out",
        `${leaf}.pem`,
      ]);
      return load(`${leaf}.pem`, `${leaf}.key`, cn);
    };
    return {
      ...ca,
      serverCert: (cn = "token-broker") => issue(cn, "server"),
      clientCert: (cn) => issue(cn, "client"),
    };
  };

  return { dir, createCa, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

/** 63 random bits, so the serial is positive and never needs a padding byte. */
function randomSerial(): string {
  const bytes = randomBytes(8);
  bytes[0] = ((bytes[0] ?? 0) & 0x7f) | 0x10;
  return bytes.toString("hex");
}

/** Replaces a file in one step (write aside, then rename), as certificate renewers do. */
export async function replaceFile(file: string, content: string): Promise<void> {
  const aside = `${file}.${randomBytes(4).toString("hex")}.tmp`;
  await writeFile(aside, content);
  await rename(aside, file);
}

/** Copies `from` over the certificate and key files at `to` (each replaced in one step). */
export async function installCert(
  from: IssuedCert,
  to: { certFile: string; keyFile: string },
): Promise<void> {
  await replaceFile(to.keyFile, from.key);
  await replaceFile(to.certFile, from.cert);
}
