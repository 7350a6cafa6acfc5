import { isIPv4, isIPv6 } from "node:net";
import { memoizeParse } from "../shared/memo.js";

/**
 * IP addresses as 16 bytes: IPv6 as is, IPv4 as its IPv4-mapped IPv6 form
 * (::ffff:a.b.c.d). One representation means an IPv4 CIDR matches a socket
 * that reports `::ffff:10.1.2.3` (a dual-stack listener) exactly as it
 * matches `10.1.2.3`, and `::/0` matches every address.
 */
export type IpBytes = Uint8Array;

/** A parsed CIDR: the network's bytes and how many leading bits must match. */
export interface Cidr {
  readonly text: string;
  readonly bytes: IpBytes;
  readonly bits: number;
}

const V4_MAPPED_PREFIX = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff] as const;

/**
 * The address's bytes, or undefined if it is not an IP address. A zone
 * (`%eth0`) is ignored. Memoized (every call's peer is parsed, and a fleet
 * talks from a few hundred addresses): the bytes are shared, read only.
 */
export const parseIp: (text: string) => IpBytes | undefined = memoizeParse((text) => {
  const address = text.split("%", 1)[0] ?? "";
  return isIPv4(address) ? mapV4(address) : isIPv6(address) ? parseV6(address) : undefined;
});

function mapV4(address: string): IpBytes {
  return Uint8Array.from([...V4_MAPPED_PREFIX, ...address.split(".").map(Number)]);
}

/** Expects text that `isIPv6` accepted. */
function parseV6(address: string): IpBytes | undefined {
  let text = address;
  const lastColon = text.lastIndexOf(":");
  const tail = text.slice(lastColon + 1);
  if (tail.includes(".")) {
    // Embedded IPv4 (::ffff:10.1.2.3): turn it into two hex groups.
    const v4 = tail.split(".").map(Number);
    const hi = (((v4[0] ?? 0) << 8) | (v4[1] ?? 0)).toString(16);
    const lo = (((v4[2] ?? 0) << 8) | (v4[3] ?? 0)).toString(16);
    text = `${text.slice(0, lastColon + 1)}${hi}:${lo}`;
  }
  const halves = text.split("::");
  const head = halves[0] ? halves[0].split(":") : [];
  const rest = halves.length > 1 && halves[1] ? halves[1].split(":") : [];
  const fill = halves.length > 1 ? 8 - head.length - rest.length : 0;
  const groups = [...head, ...Array<string>(fill).fill("0"), ...rest];
  if (groups.length !== 8) return undefined;
  const bytes = new Uint8Array(16);
  groups.forEach((group, i) => {
    const value = Number.parseInt(group, 16);
    bytes[i * 2] = value >> 8;
    bytes[i * 2 + 1] = value & 0xff;
  });
  return bytes;
}

/**
 * Parses "10.0.0.0/8", "2001:db8::/32", "::ffff:10.0.0.0/104" or a bare
 * address (a single host). Throws with a message naming the entry when it is
 * not a CIDR or has host bits set ("10.1.2.3/8" is more likely a typo for /32
 * than a wish to allow the whole /8).
 */
export function parseCidr(text: string): Cidr {
  const trimmed = text.trim();
  const slash = trimmed.indexOf("/");
  const addressText = slash < 0 ? trimmed : trimmed.slice(0, slash);
  const prefixText = slash < 0 ? undefined : trimmed.slice(slash + 1);
  const v4 = isIPv4(addressText);
  const bytes = v4 ? mapV4(addressText) : isIPv6(addressText) ? parseV6(addressText) : undefined;
  if (!bytes || addressText.includes("%")) {
    throw new Error(`'${text}' is not a CIDR: expected e.g. 10.0.0.0/8 or 2001:db8::/32`);
  }
  const max = v4 ? 32 : 128;
  const prefix = prefixText === undefined ? max : Number(prefixText);
  if (prefixText !== undefined && !/^\d{1,3}$/.test(prefixText)) {
    throw new Error(`'${text}' is not a CIDR: the prefix length must be a number from 0 to ${max}`);
  }
  if (!Number.isInteger(prefix) || prefix < 0 || prefix > max) {
    throw new Error(`'${text}' is not a CIDR: the prefix length must be from 0 to ${max}`);
  }
  const bits = v4 ? 96 + prefix : prefix;
  const network = masked(bytes, bits);
  if (!sameBytes(network, bytes)) {
    throw new Error(
      `'${text}' has host bits set: write the network address (${formatNetwork(network, v4)}/${prefix}) or a /${max} for the one host`,
    );
  }
  return { text: trimmed, bytes: network, bits };
}

/** True when `address` lies in `cidr`. */
export function inCidr(address: IpBytes, cidr: Cidr): boolean {
  return sameBytes(masked(address, cidr.bits), cidr.bytes);
}

export function inAnyCidr(address: IpBytes | undefined, cidrs: readonly Cidr[]): boolean {
  return address !== undefined && cidrs.some((c) => inCidr(address, c));
}

function masked(bytes: IpBytes, bits: number): IpBytes {
  const out = new Uint8Array(16);
  for (let i = 0; i < 16; i++) {
    const keep = Math.max(0, Math.min(8, bits - i * 8));
    out[i] = (bytes[i] ?? 0) & ((0xff << (8 - keep)) & 0xff);
  }
  return out;
}

function sameBytes(a: IpBytes, b: IpBytes): boolean {
  return a.every((byte, i) => byte === b[i]);
}

function formatNetwork(bytes: IpBytes, v4: boolean): string {
  if (v4) return [...bytes.subarray(12)].join(".");
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) {
    groups.push((((bytes[i] ?? 0) << 8) | (bytes[i + 1] ?? 0)).toString(16));
  }
  // Compress the longest run of two or more zero groups to "::".
  let best = { at: -1, length: 1 };
  for (let i = 0; i < 8; i++) {
    let j = i;
    while (groups[j] === "0") j++;
    if (j - i > best.length) best = { at: i, length: j - i };
  }
  if (best.at < 0) return groups.join(":");
  const head = groups.slice(0, best.at).join(":");
  const tail = groups.slice(best.at + best.length).join(":");
  return `${head}::${tail}`;
}

/**
 * One entry of X-Forwarded-For as an address: proxies sometimes append a
 * port ("203.0.113.9:51234", "[2001:db8::1]:443"); the port is dropped.
 */
export function stripPort(entry: string): string {
  const bracketed = /^\[([^\]]+)\](?::\d+)?$/.exec(entry);
  if (bracketed?.[1]) return bracketed[1];
  const v4WithPort = /^(\d{1,3}(?:\.\d{1,3}){3}):\d+$/.exec(entry);
  if (v4WithPort?.[1]) return v4WithPort[1];
  return entry;
}

/** Where a call came from, and through which proxy if X-Forwarded-For was honoured. */
export interface CallerAddress {
  /** The address the policy is applied to. */
  readonly address: string;
  readonly bytes: IpBytes | undefined;
  /** The trusted proxy the call arrived from, when `address` came from X-Forwarded-For. */
  readonly via?: string;
}

/**
 * The caller's address.
 *
 * The rule: the socket's peer address, unless the peer is a trusted proxy and
 * the call carries X-Forwarded-For. Then the entries (all headers, comma
 * separated, in order) are read from the right, skipping every entry that is
 * itself a trusted proxy; the first other entry is the caller. Each proxy
 * appends the address it received the call from, so entries right of the
 * first untrusted hop were written by our own proxies and entries left of it
 * may be forged by the caller and are never used. If every entry is a
 * trusted proxy, the left-most is the caller. X-Forwarded-For from a peer that
 * is not a trusted proxy is ignored: anyone can send the header.
 */
export function callerAddress(
  peerAddress: string | undefined,
  forwardedFor: string | null,
  trustedProxies: readonly Cidr[],
): CallerAddress {
  if (peerAddress === undefined) return { address: "unknown", bytes: undefined };
  const peerBytes = parseIp(peerAddress);
  const peer = { address: peerAddress, bytes: peerBytes };
  if (forwardedFor === null || !inAnyCidr(peerBytes, trustedProxies)) return peer;
  const hops = forwardedFor
    .split(",")
    .map((entry) => stripPort(entry.trim()))
    .filter((entry) => entry !== "");
  if (hops.length === 0) return peer;
  for (let i = hops.length - 1; i >= 0; i--) {
    const hop = hops[i] ?? "";
    const bytes = parseIp(hop);
    if (!inAnyCidr(bytes, trustedProxies)) return { address: hop, bytes, via: peerAddress };
  }
  const first = hops[0] ?? "";
  return { address: first, bytes: parseIp(first), via: peerAddress };
}
