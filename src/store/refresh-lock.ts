// Moved: the port to the core, the single-node lock to store/memory; kept until every importer is updated.
export * from "../core/ports/refresh-lock.js";
export { LocalRefreshLock } from "./memory/local-refresh-lock.js";
