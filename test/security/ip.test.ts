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
  const ip = parseIp(address);
  if (!ip) throw new Error(`not an address: ${address}`);
  return inCidr(ip, parseCidr(cidr));
};

describe("IP addresses", () => {
  it("parses IPv4, IPv6, IPv4-mapped IPv6 and zones; rejects the rest", () => {
    expect(parseIp("10.1.2.3")).toEqual({ address: "10.1.2.3", family: "ipv4" });
    expect(parseIp("::ffff:10.1.2.3")).toEqual({ address: "::ffff:10.1.2.3", family: "ipv6" });
    expect(parseIp("2001:db8::1")).toEqual({ address: "2001:db8::1", family: "ipv6" });
    expect(parseIp("::")).toEqual({ address: "::", family: "ipv6" });
    expect(parseIp("fe80::1%eth0")).toEqual(parseIp("fe80::1"));
    for (const bad of ["", "unknown", "10.1.2", "10.1.2.256", "1::2::3", "[::1]", "10.1.2.3:80"]) {
      expect(parseIp(bad), bad).toBeUndefined();
    }
  });

  it("match as the same address however they are written", () => {
    for (const written of ["2001:db8::1", "2001:0db8:0:0:0:0:0:0001", "2001:DB8::1"])
      expect(within(written, "2001:db8::1/128"), written).toBe(true);
    expect(within("fe80::1%eth0", "fe80::/10")).toBe(true);
    expect(within("::", "::/128")).toBe(true);
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
    // The same mapped address in hexadecimal, and in capitals.
    expect(within("::ffff:a01:203", "10.0.0.0/8")).toBe(true);
    expect(within("::FFFF:A01:203", "10.1.2.3/32")).toBe(true);
    expect(within("0:0:0:0:0:ffff:10.1.2.3", "10.0.0.0/8")).toBe(true);
    expect(within("10.1.2.3", "::ffff:10.0.0.0/104")).toBe(true);
    expect(within("11.1.2.3", "::ffff:10.0.0.0/104")).toBe(false);
    expect(within("::ffff:10.1.2.3", "::ffff:10.0.0.0/104")).toBe(true);
    // Every address, IPv4 included, is in ::/0; an IPv4 peer is in the mapped /96.
    expect(within("10.1.2.3", "::/0")).toBe(true);
    expect(within("10.1.2.3", "::ffff:0:0/96")).toBe(true);
    expect(within("10.1.2.3", "::/96")).toBe(false);
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
    expect(() => parseCidr("fe80::%eth0/10")).toThrow(/not a CIDR/);
  });

  it("refuses host bits, suggesting the network or the single host", () => {
    expect(() => parseCidr("10.1.2.3/8")).toThrow(
      "'10.1.2.3/8' has host bits set: write the network address (10.0.0.0/8) or a /32 for the one host",
    );
    expect(() => parseCidr("2001:db8::1/32")).toThrow(/\(2001:db8::\/32\) or a \/128/);
    expect(() => parseCidr("::1/64")).toThrow(/\(::\/64\)/);
    expect(() => parseCidr("fd00:9:0:1:2::1/80")).toThrow(/\(fd00:9:0:1:2::\/80\)/);
    expect(() => parseCidr("::ffff:10.1.2.3/104")).toThrow(/\(::ffff:10.0.0.0\/104\) or a \/128/);
    expect(() => parseCidr("2001:DB8::1:0/64")).toThrow(/\(2001:db8::\/64\)/);
    expect(parseCidr(" 0.0.0.0/0 ").text).toBe("0.0.0.0/0");
    expect(parseCidr("::/0").text).toBe("::/0");
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
      ip: { address: "2001:db8::7", family: "ipv6" },
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
    expect(got.ip).toBeUndefined();
  });

  it("has no address when the socket is gone", () => {
    expect(callerAddress(undefined, "10.1.1.1", trusted)).toEqual({
      address: "unknown",
      ip: undefined,
    });
  });
});
