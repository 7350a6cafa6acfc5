// The fake clock lives in src/shared so the benchmarks can use it without importing test/.
export { FakeClock, flushMicrotasks } from "../../src/shared/fake-clock.js";
