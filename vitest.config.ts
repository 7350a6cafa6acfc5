import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts", "packages/*/test/**/*.test.ts"],
    // Two cores: more workers only add contention to the integration tests,
    // which start real servers and child processes.
    pool: "forks",
    maxWorkers: 2,
    testTimeout: 20_000,
    hookTimeout: 30_000,
    reporters: ["default", "./test/helpers/summary-reporter.ts"],
    // Suite-wide leak scan: records secrets, issued tokens, log lines and Redis
    // commands of the whole run, and fails the run on a hit.
    globalSetup: ["./test/leak-scan.global-setup.ts"],
  },
});
