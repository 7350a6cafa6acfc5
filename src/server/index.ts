export { AcceptGate } from "./accept-gate.js";
export {
  type ConnectServerOptions,
  type HttpRoutes,
  startConnectServer,
} from "./connect-server.js";
export { type GrpcServerOptions, type RunningServer, startGrpcServer } from "./grpc-server.js";
export { SHUTDOWN_MESSAGE, shutdownError } from "./grpc-status.js";
export { HealthStatus, healthRegistration, ServingStatus } from "./health.js";
export { type Peer, peerKey } from "./peer.js";
export { reflectionEnabled, reflectionRegistrations } from "./reflection.js";
export { registration, type ServiceRegistration } from "./registration.js";
export { type CloseOptions, DEFAULT_GRACE_MS } from "./shutdown.js";
export { DEFAULT_TLS_RELOAD_MS, type TlsOptions } from "./tls.js";
