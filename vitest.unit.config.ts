import { defineConfig } from "vitest/config";
import base from "./vitest.config.js";

/**
 * `npm run test:unit`: the fast lane, tests that start no server, open no
 * socket and spawn no process (test/helpers/no-io.setup.ts makes each of
 * those throw). `npm test` runs these too, with everything else. A new test
 * file that needs no I/O belongs on this list.
 */
export const UNIT_TESTS = [
  "test/config/config-changes.test.ts",
  "test/config/exposure.test.ts",
  "test/config/parse-config.test.ts",
  "test/observability/alert-manager.test.ts",
  "test/observability/webhook-body.test.ts",
  "test/quota/budgets.test.ts",
  "test/quota/china-day.test.ts",
  "test/rpc/token-responses.test.ts",
  "test/rpc/validation-and-errors.test.ts",
  "test/security/constant-time.test.ts",
  "test/security/ip.test.ts",
  "test/security/limits.test.ts",
  "test/security/policy.test.ts",
  "test/security/refusal-log.test.ts",
  "test/security/secure.test.ts",
  "test/server/grpc-status.test.ts",
  "test/shared/clock.test.ts",
  "test/shared/observe-stream.test.ts",
  "test/store/memory-store.test.ts",
  "test/store/redis-url.test.ts",
  "test/token/app-registry.test.ts",
  "test/token/refresh-policy.test.ts",
  "test/token/single-flight.test.ts",
  "test/token/update-queue.test.ts",
  "test/upstream/upstream-breakers.test.ts",
];

// Spread, not mergeConfig: merging would append this list to the base include.
export default defineConfig({
  ...base,
  test: {
    ...base.test,
    include: UNIT_TESTS,
    setupFiles: ["./test/helpers/no-io.setup.ts"],
    // Nothing here waits on a server or a process: a slow test is a bug.
    testTimeout: 5_000,
  },
});
