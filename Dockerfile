# syntax=docker/dockerfile:1
# The broker's container image. The build steps live in scripts/image-build.sh
# (and the check in scripts/image-smoke.sh), which CI also runs in a clean copy
# of the tree (test/deploy/image.test.ts), so the recipe is tested without a
# container engine.
#
#   docker build -t token-broker .
#   docker run -v ./config:/etc/token-broker:ro -p 50051:50051 token-broker

FROM node:20-bookworm-slim AS build
# better-sqlite3 compiles its addon when no prebuilt binary matches the platform.
RUN apt-get update \
  && apt-get install -y --no-install-recommends python3 make g++ \
  && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# npm ci, build, prune to production dependencies, runtime laid out in /app;
# then the compiled broker must start, answer SERVING and exit 0 on SIGTERM.
RUN bash scripts/image-build.sh /app && bash scripts/image-smoke.sh /app

FROM node:20-bookworm-slim
# tini as PID 1: forwards SIGTERM/SIGHUP to node and reaps zombies.
RUN apt-get update \
  && apt-get install -y --no-install-recommends tini \
  && rm -rf /var/lib/apt/lists/*
# Owned by root and read-only to the broker's user.
COPY --from=build /app /app
ENV NODE_ENV=production \
    TOKEN_BROKER_RUNTIME=compiled \
    TOKEN_BROKER_CONFIG=/etc/token-broker/config.yaml
# The unprivileged user of the Node image (uid 1000).
USER node
WORKDIR /app
# gRPC, Connect, metrics (as the example config and the Kubernetes manifests use them).
EXPOSE 50051 8080 9464
# For engines without native gRPC probes; Kubernetes uses grpc probes instead.
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
  CMD ["node", "/app/bin/token-broker.js", "health", "--addr", "127.0.0.1:50051", "--timeout", "4000"]
ENTRYPOINT ["/usr/bin/tini", "--", "node", "/app/bin/token-broker.js"]
CMD ["serve", "--watch-config", "10"]
