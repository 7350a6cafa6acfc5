import { z } from "zod";
import { cidrSchema, clientsSchema } from "../../security/policy.js";
import { bool, EVEN_WITH_ISSUES, list, section, text } from "../../shared/schema.js";
import { type ConfigEnvironment, secretRef } from "./secret.js";

/** The listeners' certificate, and the CA that signs client certificates (mTLS). */
const tlsSchema = section({
  certFile: text(),
  keyFile: text(),
  /** CA that signs client certificates; enables mTLS identities. */
  clientCaFile: text().optional(),
  requireClientCert: bool().prefault(false),
}).superRefine((t, ctx) => {
  if (t.requireClientCert === true && t.clientCaFile === undefined)
    ctx.addIssue({
      code: "custom",
      path: ["requireClientCert"],
      message: "needs clientCaFile (the CA that signs client certificates)",
    });
}, EVEN_WITH_ISSUES);

/** An AES-256-GCM key for values at rest: 32 random bytes, base64. */
function encryptionKeySchema(environment: ConfigEnvironment) {
  return section({
    id: text().regex(/^[A-Za-z0-9_-]{1,32}$/, "1-32 letters, digits, '_' or '-'"),
    key: secretRef(environment).refine(
      (key) => Buffer.from(key.reveal(), "base64").length === 32,
      "expected 32 random bytes, base64-encoded (e.g. `openssl rand -base64 32`)",
    ),
  });
}

/** An ISO 8601 time with its zone (never open-ended), as epoch ms. */
const isoTime = text("an ISO 8601 time with its zone, e.g. 2026-12-31T00:00:00Z").transform(
  (v, ctx) => {
    const at = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$/.test(v)
      ? Date.parse(v)
      : Number.NaN;
    if (Number.isNaN(at)) {
      ctx.addIssue({
        code: "custom",
        message: "expected an ISO 8601 time with its zone, e.g. 2026-12-31T00:00:00Z",
      });
      return z.NEVER;
    }
    return at;
  },
);

/** Who may call the broker, from where, and how values are protected at rest. */
export function securitySchema(environment: ConfigEnvironment) {
  return section({
    tls: tlsSchema.optional(),
    /** Empty: no authentication (then the broker listens on loopback only, unless allowed below). */
    clients: clientsSchema().prefault([]),
    allowCidrs: list(cidrSchema()).optional(),
    trustedProxies: list(cidrSchema()).optional(),
    allowUnauthenticatedNonLoopback: bool().prefault(false),
    /** Accept API keys over plaintext on a non-loopback listener (TLS ends in front of the broker). */
    allowPlaintextNonLoopback: bool().prefault(false),
    /** AES-256-GCM keys for token values at rest in Redis; the first encrypts, all decrypt. */
    encryptionKeys: list(encryptionKeySchema(environment)).prefault([]),
    /**
     * Migration window (epoch ms): until then, values stored unencrypted are
     * still read with encryption keys configured; afterwards they are refused.
     */
    acceptPlaintextUntil: isoTime.optional(),
  }).superRefine((s, ctx) => {
    if (s.acceptPlaintextUntil !== undefined && s.encryptionKeys?.length === 0)
      ctx.addIssue({
        code: "custom",
        path: ["acceptPlaintextUntil"],
        message:
          "only means something with security.encryptionKeys (values are stored unencrypted without them)",
      });
  }, EVEN_WITH_ISSUES);
}
