import { createClient } from "@connectrpc/connect";
import { Health, HealthCheckResponse_ServingStatus } from "../../gen/grpc/health/v1/health_pb.js";
import { brokerTransport, type ConnectionOptions } from "./connection.js";

export interface HealthOptions extends ConnectionOptions {
  timeoutMs: number;
  /** The grpc.health.v1 service name; "" is the server as a whole. */
  service: string;
}

/** The broker answered, but not SERVING: exit 1 with its status. */
export class NotServingError extends Error {}

/**
 * `token-broker health`: grpc.health.v1 Check, printing the status; exits 0
 * only on SERVING. For orchestrators without native gRPC probes (a container
 * HEALTHCHECK, an exec probe through TLS) and for the image's own check.
 */
export async function healthCommand(o: HealthOptions): Promise<void> {
  const health = createClient(Health, brokerTransport(o));
  const { status } = await health.check({ service: o.service }, { timeoutMs: o.timeoutMs });
  const name = HealthCheckResponse_ServingStatus[status] ?? String(status);
  if (status !== HealthCheckResponse_ServingStatus.SERVING)
    throw new NotServingError(`${o.service || "server"}: ${name}`);
  process.stdout.write(`${name}\n`);
}
