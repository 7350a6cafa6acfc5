// Moved to the core; kept until every importer is updated.
export * from "../core/credential.js";
export { CREDENTIAL_KINDS } from "../credentials/index.js";
