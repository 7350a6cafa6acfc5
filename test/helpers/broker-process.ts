import { type ChildProcess, spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { TokenService } from "../../gen/tokenbroker/v1/token_service_pb.js";
import { createGrpcJsClient, type GrpcJsClient } from "./grpc-js-client.js";
import { killOnExit } from "./redis-server.js";

/** A broker started as its own OS process (`token-broker serve --config`), as deployed. */
export interface BrokerProcess {
  readonly child: ChildProcess;
  readonly client: GrpcJsClient<typeof TokenService>;
  readonly exited: Promise<number | null>;
  /** Closes the client and kills the process (SIGKILL), then waits for its exit. */
  kill(): Promise<void>;
}

/**
 * Spawns `bin/token-broker.js serve --config <config>` and resolves once its
 * "token broker serving" log line names the gRPC address. The process is
 * killed when the test process exits, even if the test never cleaned up.
 */
export async function spawnBroker(config: string): Promise<BrokerProcess> {
  const child = spawn(process.execPath, ["bin/token-broker.js", "serve", "--config", config], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  killOnExit(child);
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  let stderr = "";
  child.stderr?.on("data", (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-2000);
  });
  const grpc = await new Promise<string>((resolve, reject) => {
    child.on("exit", (code) => reject(new Error(`broker exited early with ${code}: ${stderr}`)));
    createInterface({ input: child.stdout as NodeJS.ReadableStream }).on("line", (line) => {
      let parsed: { msg?: string; grpc?: string };
      try {
        parsed = JSON.parse(line) as typeof parsed;
      } catch {
        return; // not a log line
      }
      if (parsed.msg === "token broker serving" && parsed.grpc)
        resolve(parsed.grpc.replace("http://", ""));
    });
  });
  const client = createGrpcJsClient(TokenService, grpc);
  return {
    child,
    client,
    exited,
    async kill() {
      client.close();
      child.kill("SIGKILL");
      await exited;
    },
  };
}
