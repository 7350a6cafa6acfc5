import { BlockList, isIP, SocketAddress } from "node:net";

/**
 * Addresses and CIDRs, matched by Node's `net.BlockList`. It treats an IPv4
 * address and its IPv4-mapped IPv6 form (::ffff:a.b.c.d, what a dual-stack
 * socket reports) as one address in both directions, so `10.0.0.0/8` matches
 * `::ffff:10.1.2.3` and `::ffff:10.0.0.0/104` matches `10.1.2.3`, while an
 * IPv4 `/0` matches no other IPv6 address and `::/0` matches every address.
 */
export type IpFamily = "ipv4" | "ipv6";

/** An IP address as BlockList takes it: the text without a zone (`%eth0`), and its family. */
export interface IpAddress {
  readonly address: string;
  readonly family: IpFamily;
}

/** A parsed CIDR: its text, and a BlockList holding just that network. */
export interface Cidr {
  readonly text: string;
  readonly list: BlockList;
}

/** The address, or undefined if the text is not an IP address. A zone is ignored. */
export function parseIp(text: string): IpAddress | undefined {
  const address = text.split("%", 1)[0] ?? "";
  return ipAddress(address);
}

function ipAddress(address: string): IpAddress | undefined {
  const version = isIP(address);
  return version === 0 ? undefined : { address, family: version === 4 ? "ipv4" : "ipv6" };
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
  const ip = addressText.includes("%") ? undefined : ipAddress(addressText);
  if (!ip) throw new Error(`'${text}' is not a CIDR: expected e.g. 10.0.0.0/8 or 2001:db8::/32`);
  const max = ip.family === "ipv4" ? 32 : 128;
  if (prefixText !== undefined && !/^\d{1,3}$/.test(prefixText)) {
    throw new Error(`'${text}' is not a CIDR: the prefix length must be a number from 0 to ${max}`);
  }
  const prefix = prefixText === undefined ? max : Number(prefixText);
  if (prefix > max) {
    throw new Error(`'${text}' is not a CIDR: the prefix length must be from 0 to ${max}`);
  }
  const bits = toBits(ip);
  const hostBits = BigInt(max - prefix);
  const network = (bits >> hostBits) << hostBits;
  if (network !== bits) {
    throw new Error(
      `'${text}' has host bits set: write the network address (${fromBits(network, ip.family)}/${prefix}) or a /${max} for the one host`,
    );
  }
  const list = new BlockList();
  list.addSubnet(ip.address, prefix, ip.family);
  return { text: trimmed, list };
}

/** True when `address` lies in `cidr`. */
export function inCidr(address: IpAddress, cidr: Cidr): boolean {
  return cidr.list.check(address.address, address.family);
}

export function inAnyCidr(address: IpAddress | undefined, cidrs: readonly Cidr[]): boolean {
  return address !== undefined && cidrs.some((c) => inCidr(address, c));
}

/**
 * The address as a number, for the host-bit check only (BlockList matches but
 * does not say what a network's first address is). IPv6 goes through the URL
 * parser first, which writes it in lower case with one "::" and no dotted tail.
 */
function toBits({ address, family }: IpAddress): bigint {
  if (family === "ipv4")
    return address.split(".").reduce((n, part) => (n << 8n) | BigInt(part), 0n);
  const [head = "", tail] = new URL(`http://[${address}]`).hostname.slice(1, -1).split("::");
  const left = head ? head.split(":") : [];
  const right = tail ? tail.split(":") : [];
  const zeros = tail === undefined ? [] : Array<string>(8 - left.length - right.length).fill("0");
  return [...left, ...zeros, ...right].reduce((n, group) => (n << 16n) | BigInt(`0x${group}`), 0n);
}

/** The address `bits` stands for, as text (IPv6 in its canonical, compressed form). */
function fromBits(bits: bigint, family: IpFamily): string {
  const [count, width, radix] = family === "ipv4" ? [4, 8n, 10] : [8, 16n, 16];
  const parts = Array.from({ length: count }, (_, i) =>
    Number((bits >> (BigInt(count - 1 - i) * width)) & ((1n << width) - 1n)).toString(radix),
  );
  if (family === "ipv4") return parts.join(".");
  return new SocketAddress({ address: parts.join(":"), family }).address;
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
  /** `address` parsed; undefined when it is not an IP address (it then matches no CIDR). */
  readonly ip: IpAddress | undefined;
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
  if (peerAddress === undefined) return { address: "unknown", ip: undefined };
  const peer = { address: peerAddress, ip: parseIp(peerAddress) };
  if (forwardedFor === null || !inAnyCidr(peer.ip, trustedProxies)) return peer;
  const hops = forwardedFor
    .split(",")
    .map((entry) => stripPort(entry.trim()))
    .filter((entry) => entry !== "");
  if (hops.length === 0) return peer;
  for (let i = hops.length - 1; i >= 0; i--) {
    const hop = hops[i] ?? "";
    const ip = parseIp(hop);
    if (!inAnyCidr(ip, trustedProxies)) return { address: hop, ip, via: peerAddress };
  }
  const first = hops[0] ?? "";
  return { address: first, ip: parseIp(first), via: peerAddress };
}
