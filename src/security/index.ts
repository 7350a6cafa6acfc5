export { clientKey, permissionsKey } from "./client-context.js";
export { type CallerAddress, callerAddress, parseCidr } from "./ip.js";
export {
  ANONYMOUS_CLIENT,
  type ClientPolicy,
  DEFAULT_BURST,
  DEFAULT_INVALIDATE_BURST,
  DEFAULT_INVALIDATE_RATE_PER_SECOND,
  DEFAULT_MAX_WATCH_STREAMS,
  DEFAULT_RATE_PER_SECOND,
  hashApiKey,
  PERMISSIONS,
  type Permission,
  type SecurityPolicy,
} from "./policy.js";
