import { execFile } from "node:child_process";
import { dirname, join } from "node:path";
import { promisify } from "node:util";
import { Deployment } from "kubernetes-models/apps/v1/Deployment";
import { NetworkPolicy } from "kubernetes-models/networking.k8s.io/v1/NetworkPolicy";
import { PodDisruptionBudget } from "kubernetes-models/policy/v1/PodDisruptionBudget";
import { ConfigMap } from "kubernetes-models/v1/ConfigMap";
import { Service } from "kubernetes-models/v1/Service";
import { beforeAll, describe, expect, it } from "vitest";
import { parseAllDocuments, parse as parseYaml } from "yaml";
import { applyEnvOverrides } from "../../src/config/load-config.js";
import { parseConfig } from "../../src/config/parse-config.js";

/**
 * The Kubernetes manifests (issue 14), as kustomize renders them: every
 * object valid against the Kubernetes API's JSON schemas (kubernetes-models),
 * and what the deployment promises checked against the broker's own config
 * parser: 3 replicas on Redis, secrets from mounted files, gRPC probes on the
 * port the config listens on, a pre-stop delay that fits the grace period.
 */

const ROOT = join(import.meta.dirname, "../..");
const run = promisify(execFile);

type Obj = Record<string, unknown> & { apiVersion: string; kind: string };
const MODELS: Record<string, new (data: never) => { validate(): void }> = {
  "apps/v1/Deployment": Deployment,
  "v1/Service": Service,
  "v1/ConfigMap": ConfigMap,
  "policy/v1/PodDisruptionBudget": PodDisruptionBudget,
  "networking.k8s.io/v1/NetworkPolicy": NetworkPolicy,
};

let objects: Obj[];
const one = <T>(kind: string) => {
  const found = objects.filter((o) => o.kind === kind);
  expect(found, kind).toHaveLength(1);
  return found[0] as unknown as T;
};

interface Probe {
  grpc?: { port: number; service?: string };
  periodSeconds?: number;
  failureThreshold?: number;
}
interface Container {
  args: string[];
  env: { name: string; valueFrom?: { secretKeyRef?: { name: string; key: string } } }[];
  ports: { name: string; containerPort: number }[];
  readinessProbe: Probe;
  livenessProbe: Probe;
  startupProbe?: Probe;
  resources: { requests: Record<string, string> };
  volumeMounts: { name: string; mountPath: string; subPath?: string }[];
}
interface DeploymentShape {
  spec: {
    replicas: number;
    strategy: { rollingUpdate: { maxUnavailable: number } };
    selector: { matchLabels: Record<string, string> };
    template: {
      metadata: { labels: Record<string, string>; annotations: Record<string, string> };
      spec: {
        terminationGracePeriodSeconds: number;
        containers: Container[];
        volumes: { name: string; secret?: { secretName: string }; configMap?: { name: string } }[];
      };
    };
  };
}

beforeAll(async () => {
  const { stdout } = await run("kubectl", ["kustomize", join(ROOT, "deploy/kubernetes")]);
  objects = parseAllDocuments(stdout).map((d) => d.toJS() as Obj);
}, 60_000);

describe("deploy/kubernetes, rendered by kubectl kustomize", () => {
  it("renders only kinds we validate, each valid against the Kubernetes API schema", () => {
    expect(objects.map((o) => o.kind).sort()).toEqual([
      "ConfigMap",
      "Deployment",
      "NetworkPolicy",
      "PodDisruptionBudget",
      "Service",
    ]);
    for (const o of objects) {
      const Model = MODELS[`${o.apiVersion}/${o.kind}`];
      expect(Model, `${o.apiVersion} ${o.kind}`).toBeDefined();
      expect(() => new (Model as NonNullable<typeof Model>)(o as never).validate()).not.toThrow();
    }
  });

  it("the schema check refuses a broken object (the check can fail)", () => {
    const d = structuredClone(
      objects.find((o) => o.kind === "Deployment"),
    ) as unknown as DeploymentShape;
    (d.spec as unknown as Record<string, unknown>).replicas = "three";
    expect(() => new Deployment(d as never).validate()).toThrow(/replicas/);
  });

  it("runs 3 replicas on Redis with the config from the ConfigMap and secrets from mounted files", () => {
    const deployment = one<DeploymentShape>("Deployment");
    expect(deployment.spec.replicas).toBe(3);
    expect(deployment.spec.strategy.rollingUpdate.maxUnavailable).toBe(0);
    const pod = deployment.spec.template.spec;
    const [broker] = pod.containers;
    if (!broker) throw new Error("no container");
    expect(broker.resources.requests).toMatchObject({
      cpu: expect.any(String),
      memory: expect.any(String),
    });

    // The config file the container is told to read is the ConfigMap's, mounted as a directory.
    const configArg = broker.args[broker.args.indexOf("--config") + 1] ?? "";
    expect(broker.args).toContain("--watch-config");
    const configMount = broker.volumeMounts.find((m) => configArg.startsWith(`${m.mountPath}/`));
    const configVolume = pod.volumes.find((v) => v.name === configMount?.name);
    const configMap = one<{ metadata: { name: string }; data: Record<string, string> }>(
      "ConfigMap",
    );
    expect(configVolume?.configMap?.name).toBe(configMap.metadata.name);
    const text = configMap.data[configArg.slice((configMount?.mountPath.length ?? 0) + 1)];
    expect(text).toBeDefined();
    // subPath mounts are never updated in place: the reload would never see a change.
    for (const m of broker.volumeMounts) expect(m.subPath).toBeUndefined();

    // The config parses with the broker's own parser, secrets read from the Secret volumes' paths.
    const secretDirs = broker.volumeMounts
      .filter((m) => pod.volumes.find((v) => v.name === m.name)?.secret)
      .map((m) => m.mountPath);
    const read: string[] = [];
    const env: Record<string, string> = {};
    for (const e of broker.env) {
      if (e.valueFrom?.secretKeyRef) env[e.name] = "redis://redis.example.internal:6379";
    }
    const config = parseConfig(applyEnvOverrides(parseYaml(text ?? ""), env), {
      env,
      readFile: (path) => {
        if (!secretDirs.some((dir) => dirname(path) === dir))
          throw Object.assign(new Error("not mounted"), { code: "ENOENT" });
        read.push(path);
        // A made-up value of the right shape (an encryption key is 32 bytes, base64).
        return path.includes("encryption")
          ? Buffer.alloc(32, 7).toString("base64")
          : "app-secret-made-up-0001";
      },
    });
    expect(config.store.type).toBe("redis");
    expect(config.apps.length).toBeGreaterThan(0);
    expect(config.security.encryptionKeys.length).toBeGreaterThan(0);
    expect(read.length).toBe(config.apps.length + config.security.encryptionKeys.length);

    // gRPC probes on the port the config listens on; readiness on the token service.
    const grpcPort = broker.ports.find((p) => p.name === "grpc")?.containerPort;
    expect(grpcPort).toBe(config.listen.grpc.port);
    expect(broker.readinessProbe.grpc).toEqual({
      port: grpcPort,
      service: "tokenbroker.v1.TokenService",
    });
    expect(broker.livenessProbe.grpc?.port).toBe(grpcPort);
    expect(broker.startupProbe?.grpc?.port).toBe(grpcPort);

    // The pre-stop delay outlasts a readiness period, and delay + grace fit the termination grace.
    const { preStopDelayMs, graceMs } = config.shutdown;
    expect(preStopDelayMs).toBeGreaterThan(
      (broker.readinessProbe.periodSeconds ?? 10) *
        (broker.readinessProbe.failureThreshold ?? 3) *
        1000,
    );
    expect(preStopDelayMs + graceMs).toBeLessThan(pod.terminationGracePeriodSeconds * 1000);

    // The metrics port is annotated for scraping and is the one the config listens on.
    const annotations = deployment.spec.template.metadata.annotations;
    expect(annotations["prometheus.io/scrape"]).toBe("true");
    expect(Number(annotations["prometheus.io/port"])).toBe(config.metrics.listen?.port);
  });

  it("a headless Service, a PodDisruptionBudget and a NetworkPolicy select the broker's pods", () => {
    const deployment = one<DeploymentShape>("Deployment");
    const podLabels = deployment.spec.template.metadata.labels;
    const selects = (selector: Record<string, string>) =>
      Object.entries(selector).every(([k, v]) => podLabels[k] === v);
    expect(selects(deployment.spec.selector.matchLabels)).toBe(true);

    const service = one<{
      spec: {
        clusterIP: string;
        selector: Record<string, string>;
        ports: { name: string; appProtocol?: string }[];
      };
    }>("Service");
    expect(service.spec.clusterIP).toBe("None");
    expect(selects(service.spec.selector)).toBe(true);
    expect(service.spec.ports.find((p) => p.name === "grpc")?.appProtocol).toBe(
      "kubernetes.io/h2c",
    );

    const pdb = one<{
      spec: { minAvailable: number; selector: { matchLabels: Record<string, string> } };
    }>("PodDisruptionBudget");
    expect(selects(pdb.spec.selector.matchLabels)).toBe(true);
    expect(pdb.spec.minAvailable).toBeLessThan(deployment.spec.replicas);

    const policy = one<{
      spec: {
        podSelector: { matchLabels: Record<string, string> };
        ingress: {
          from: { podSelector?: { matchLabels: Record<string, string> } }[];
          ports: { port: string }[];
        }[];
      };
    }>("NetworkPolicy");
    expect(selects(policy.spec.podSelector.matchLabels)).toBe(true);
    const rpc = policy.spec.ingress.find((r) => r.ports.some((p) => p.port === "grpc"));
    // Only labelled clients: every peer of the RPC rule names a pod label.
    expect(rpc?.from.length).toBeGreaterThan(0);
    for (const peer of rpc?.from ?? [])
      expect(peer.podSelector?.matchLabels).toEqual({ "token-broker-client": "true" });
  });
});
