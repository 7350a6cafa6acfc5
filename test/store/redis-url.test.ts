import { describe, expect, it } from "vitest";
import { parseRedisUrl } from "../../src/store/redis/connection.js";

describe("parseRedisUrl", () => {
  it.each([
    [
      "redis://127.0.0.1:6380",
      { mode: "standalone", host: "127.0.0.1", port: 6380, db: 0, tls: false },
    ],
    [
      "rediss://u:p%40ss@redis.internal:6379/2",
      {
        mode: "standalone",
        host: "redis.internal",
        port: 6379,
        db: 2,
        tls: true,
        username: "u",
        password: "p@ss",
      },
    ],
    ["redis://[::1]:6379", { mode: "standalone", host: "::1", port: 6379, db: 0, tls: false }],
    [
      "redis-sentinel://:pw@h1:26379,h2:26380/mymaster/1",
      {
        mode: "sentinel",
        sentinels: [
          { host: "h1", port: 26379 },
          { host: "h2", port: 26380 },
        ],
        masterName: "mymaster",
        db: 1,
        password: "pw",
      },
    ],
    [
      "redis-cluster://n1:7000,n2:7001,n3:7002",
      {
        mode: "cluster",
        nodes: [
          { host: "n1", port: 7000 },
          { host: "n2", port: 7001 },
          { host: "n3", port: 7002 },
        ],
        tls: false,
      },
    ],
  ])("parses %s", (url, expected) => {
    expect(parseRedisUrl(url)).toEqual(expected);
  });

  it.each([
    ["http://x:1", /expected redis:\/\/host:port/],
    ["redis://x", /'x' is not host:port/],
    ["redis://a:1,b:2", /standalone URL names one host/],
    ["redis://a:99999", /'a:99999' is not host:port/],
    ["redis://a:1/16", /not a database number/],
    ["redis-sentinel://a:1", /needs the master name/],
    ["redis-cluster://a:1/0", /takes no database number/],
  ])("rejects %s", (url, message) => {
    expect(() => parseRedisUrl(url)).toThrow(message);
  });
});
