import { describe, expect, it } from "vitest";
import {
  callerAddress,
  inAnyCidr,
  inCidr,
  parseCidr,
  parseIp,
  stripPort,
} from "../../src/security/ip.js";

const within = (address: string, cidr: string) => {
  const bytes = parseIp(address);
  if (!bytes) throw new Error(`not an address: ${address}`);
  return inCidr(bytes, parseCidr(cidr));
};

describe("IP addresses", () => {
  it("parses IPv4, IPv6, IPv4-mapped IPv6 and zones; rejects the rest", () => {
    expect([...(parseIp("10.1.2.3") ?? [])]).toEqual([
      0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 255, 255, 10, 1, 2, 3,
    ]);
    expect(parseIp("::ffff:10.1.2.3")).toEqual(parseIp("10.1.2.3"));
    expect(parseIp("::FFFF:a01:203")).toEqual(parseIp("10.1.2.3"));
    expect(parseIp("2001:db8::1")).toEqual(parseIp("2001:0db8:0:0:0:0:0:0001"));
    expect(parseIp("::")).toEqual(new Uint8Array(16));
    expect(parseIp("fe80::1%eth0")).toEqual(parseIp("fe80::1"));
    for (const bad of ["", "unknown", "10.1.2", "10.1.2.256", "1::2::3", "[::1]", "10.1.2.3:80"]) {
      expect(parseIp(bad), bad).toBeUndefined();
    }
  });
});

describe("CIDR matching", () => {
  it("matches IPv4 networks, including single hosts and /0", () => {
    expect(within("10.1.2.3", "10.0.0.0/8")).toBe(true);
    expect(within("11.1.2.3", "10.0.0.0/8")).toBe(false);
    expect(within("192.168.1.130", "192.168.1.128/25")).toBe(true);
    expect(within("192.168.1.127", "192.168.1.128/25")).toBe(false);
    expect(within("127.0.0.1", "127.0.0.1")).toBe(true);
    expect(within("127.0.0.2", "127.0.0.1")).toBe(false);
    expect(within("203.0.113.9", "0.0.0.0/0")).toBe(true);
  });

  it("matches IPv6 networks", () => {
    expect(within("2001:db8:1::5", "2001:db8::/32")).toBe(true);
    expect(within("2001:db9::5", "2001:db8::/32")).toBe(false);
    expect(within("fd00:9::17", "fd00:9::/64")).toBe(true);
    expect(within("fd00:9:0:1::17", "fd00:9::/64")).toBe(false);
    expect(within("::1", "::1/128")).toBe(true);
    expect(within("2001:db8::1", "::/0")).toBe(true);
  });

  it("matches an IPv4-mapped IPv6 address (dual-stack socket) against IPv4 networks and back", () => {
    expect(within("::ffff:10.1.2.3", "10.0.0.0/8")).toBe(true);
    expect(within("::ffff:192.168.0.1", "10.0.0.0/8")).toBe(false);
    expect(within("::ffff:127.0.0.1", "127.0.0.1")).toBe(true);
    expect(within("10.1.2.3", "::ffff:10.0.0.0/104")).toBe(true);
    // An IPv4 /0 is every IPv4 address, not every IPv6 one.
    expect(within("2001:db8::1", "0.0.0.0/0")).toBe(false);
    // A v4-compatible or NAT64 address is not the IPv4 address.
    expect(within("::10.1.2.3", "10.0.0.0/8")).toBe(false);
    expect(within("64:ff9b::a01:203", "10.0.0.0/8")).toBe(false);
  });

  it("refuses entries that are not CIDRs, naming them", () => {
    expect(() => parseCidr("10.0.0.0/33")).toThrow(/'10.0.0.0\/33'.*from 0 to 32/);
    expect(() => parseCidr("2001:db8::/129")).toThrow(/from 0 to 128/);
    expect(() => parseCidr("10.0.0.0/")).toThrow(/prefix length/);
    expect(() => parseCidr("10.0.0.0/8x")).toThrow(/prefix length/);
    expect(() => parseCidr("localhost")).toThrow(/'localhost' is not a CIDR/);
    expect(() => parseCidr("fe80::/10%eth0")).toThrow(/not a CIDR/);
  });

  it("refuses host bits, suggesting the network or the single host", () => {
    expect(() => parseCidr("10.1.2.3/8")).toThrow(
      "'10.1.2.3/8' has host bits set: write the network address (10.0.0.0/8) or a /32 for the one host",
    );
    expect(() => parseCidr("2001:db8::1/32")).toThrow(/\(2001:db8::\/32\) or a \/128/);
    expect(() => parseCidr("::1/64")).toThrow(/\(::\/64\)/);
    expect(() => parseCidr("fd00:9:0:1:2::1/80")).toThrow(/\(fd00:9:0:1:2::\/80\)/);
  });

  it("inAnyCidr is false for an address that did not parse", () => {
    expect(inAnyCidr(undefined, [parseCidr("::/0")])).toBe(false);
  });
});

describe("X-Forwarded-For", () => {
  const trusted = [parseCidr("10.9.0.0/16"), parseCidr("fd00:9::/64")];

  it("drops ports and brackets from entries", () => {
    expect(stripPort("203.0.113.9:51234")).toBe("203.0.113.9");
    expect(stripPort("[2001:db8::1]:443")).toBe("2001:db8::1");
    expect(stripPort("[2001:db8::1]")).toBe("2001:db8::1");
    expect(stripPort("2001:db8::1")).toBe("2001:db8::1");
  });

  it("ignores the header from a peer that is not a trusted proxy", () => {
    expect(callerAddress("192.168.5.5", "10.1.1.1", trusted)).toMatchObject({
      address: "192.168.5.5",
    });
    expect(callerAddress("192.168.5.5", "10.1.1.1", trusted).via).toBeUndefined();
    expect(callerAddress("10.9.0.1", "10.1.1.1", []).address).toBe("10.9.0.1");
  });

  it("uses the peer when a trusted proxy sends no or an empty header", () => {
    expect(callerAddress("10.9.0.1", null, trusted)).toMatchObject({ address: "10.9.0.1" });
    expect(callerAddress("10.9.0.1", " , ", trusted)).toMatchObject({ address: "10.9.0.1" });
  });

  it("takes the right-most entry that is not a trusted proxy", () => {
    expect(callerAddress("10.9.0.1", "203.0.113.9", trusted)).toMatchObject({
      address: "203.0.113.9",
      via: "10.9.0.1",
    });
    // Proxy chain: caller -> 10.9.0.7 -> 10.9.0.1 (peer).
    expect(callerAddress("10.9.0.1", "203.0.113.9, 10.9.0.7", trusted).address).toBe("203.0.113.9");
    // The caller forged the left-most entries; the entry our proxy wrote wins.
    expect(callerAddress("10.9.0.1", "127.0.0.1, 10.1.1.1, 203.0.113.9", trusted).address).toBe(
      "203.0.113.9",
    );
    // Two headers read as one list; ports and IPv6 handled.
    expect(callerAddress("fd00:9::2", "1.2.3.4, [2001:db8::7]:5000, fd00:9::3", trusted)).toEqual({
      address: "2001:db8::7",
      bytes: expect.any(Uint8Array),
      via: "fd00:9::2",
    });
    expect(callerAddress("::ffff:10.9.0.1", "203.0.113.9:4444", trusted).address).toBe(
      "203.0.113.9",
    );
  });

  it("takes the left-most entry when every entry is a trusted proxy", () => {
    expect(callerAddress("10.9.0.1", "10.9.0.5, 10.9.0.6", trusted).address).toBe("10.9.0.5");
  });

  it("keeps a garbage entry as the address (it matches no CIDR)", () => {
    const got = callerAddress("10.9.0.1", "1.2.3.4, unknown", trusted);
    expect(got.address).toBe("unknown");
    expect(got.bytes).toBeUndefined();
  });

  it("has no address when the socket is gone", () => {
    expect(callerAddress(undefined, "10.1.1.1", trusted)).toEqual({
      address: "unknown",
      bytes: undefined,
    });
  });
});
