// Moved: the port to the core, the single-node queue to store/memory; kept until every importer is updated.
export * from "../core/ports/due-queue.js";
export { LocalDueQueue } from "./memory/local-due-queue.js";
