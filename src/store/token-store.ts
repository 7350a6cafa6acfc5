// Moved to the core (the core owns its ports); kept until every importer is updated.
export * from "../core/ports/token-store.js";
