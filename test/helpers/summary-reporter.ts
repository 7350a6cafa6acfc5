import type { Reporter, TestModule, TestSuite } from "vitest/node";

/**
 * Prints the plain closing line `N passed, N failed[, N skipped]` that CI
 * reads. Errors outside tests (a throwing beforeAll, a file that fails to
 * load, an unhandled rejection) count as failures: vitest marks the tests of
 * such a suite skipped, and they must not read as a clean run.
 */
export default class SummaryReporter implements Reporter {
  onTestRunEnd(modules: ReadonlyArray<TestModule>, errors: ReadonlyArray<unknown>): void {
    let passed = 0;
    let failed = errors.length;
    let skipped = 0;
    for (const m of modules) {
      failed += m.errors().length;
      for (const s of m.children.allSuites()) failed += (s as TestSuite).errors().length;
      for (const t of m.children.allTests()) {
        const state = t.result().state;
        if (state === "passed") passed++;
        else if (state === "failed") failed++;
        else skipped++;
      }
    }
    process.stdout.write(
      `\n${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ""}\n`,
    );
  }
}
