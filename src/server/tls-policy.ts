import type { SecureContextOptions } from "node:tls";

/**
 * Mozilla's "intermediate" server profile: TLS 1.2 or 1.3; for 1.2 only
 * ECDHE key exchange (forward secrecy) with an AEAD cipher. Node's default
 * list also offers static-RSA, CBC-SHA1, CCM8 and ARIA suites to TLS 1.2
 * clients; these are refused. Both listeners use it, and it must be passed to
 * every `setSecureContext` too: Node resets the cipher list to its default
 * when a reload leaves it out.
 */
export const TLS_POLICY = Object.freeze({
  minVersion: "TLSv1.2",
  ciphers: [
    // TLS 1.3 (OpenSSL's defaults, named so that none other sneaks in).
    "TLS_AES_128_GCM_SHA256",
    "TLS_AES_256_GCM_SHA384",
    "TLS_CHACHA20_POLY1305_SHA256",
    // TLS 1.2: ECDHE with AES-GCM or ChaCha20-Poly1305 only.
    "ECDHE-ECDSA-AES128-GCM-SHA256",
    "ECDHE-RSA-AES128-GCM-SHA256",
    "ECDHE-ECDSA-AES256-GCM-SHA384",
    "ECDHE-RSA-AES256-GCM-SHA384",
    "ECDHE-ECDSA-CHACHA20-POLY1305",
    "ECDHE-RSA-CHACHA20-POLY1305",
  ].join(":"),
  // The client's preference among these (all strong), as Mozilla advises.
  honorCipherOrder: false,
} satisfies SecureContextOptions);
