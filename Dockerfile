# syntax=docker/dockerfile:1
# One image for every role: the argument names it (docker run IMAGE core|edge|worker [flags]).
#   docker build -t llama-orch:0.1.0 .                          CPU: core, edge, sidecars on the CPU
#   docker build --target cuda -t llama-orch:0.1.0-cuda .       sidecars on NVIDIA GPUs (README.md, "Container image")
# Probes are per role, so the image declares none: the edge answers GET /healthz and /readyz, core and
# sidecars grpc.health.v1 and GET /metrics on --metrics-port (deploy/kubernetes shows each).

# Build: every dependency, then the TypeScript compiler. No install scripts run: nothing is built or
# downloaded beyond the registry's packages (node-llama-cpp's engines are prebuilt packages).
FROM node:20-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json ./
COPY cli cli
COPY contracts contracts
COPY core core
COPY edge edge
COPY workers workers
RUN npx tsc -p tsconfig.json

# Production dependencies only. npm installs every prebuilt llama.cpp build that fits Linux
# (CPU, CUDA, Vulkan, arm), about 700 MB; each image keeps the ones it can run.
FROM node:20-bookworm-slim AS deps
WORKDIR /opt/llorch
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force

FROM deps AS deps-cpu
ARG TARGETARCH
RUN keep="linux-$([ "$TARGETARCH" = arm64 ] && echo arm64 || echo x64)"; \
    for d in node_modules/@node-llama-cpp/*; do [ "$(basename "$d")" = "$keep" ] || rm -rf "$d"; done

FROM deps AS deps-cuda
RUN for d in node_modules/@node-llama-cpp/*; do \
      case "$(basename "$d")" in linux-x64|linux-x64-cuda|linux-x64-cuda-ext) ;; *) rm -rf "$d" ;; esac; \
    done

# What every role runs: the compiled CLI and the assets it reads at run time (OpenAPI documents,
# the descriptor set, the console's page), found from package.json's folder.
FROM node:20-bookworm-slim AS base
# tini as PID 1 reaps the processes a sidecar's --engine-cmd leaves behind and forwards signals.
RUN apt-get update && apt-get install -y --no-install-recommends tini && rm -rf /var/lib/apt/lists/*
ENV NODE_ENV=production
WORKDIR /opt/llorch
COPY package.json ./
COPY contracts/openapi contracts/openapi
COPY contracts/gen/descriptors.binpb contracts/gen/descriptors.binpb
COPY edge/ui edge/ui
COPY --from=build /src/dist dist
# gRPC (core, sidecar), HTTP (edge), metrics (core, sidecar).
EXPOSE 50051 50052 8080 9464 9465
ENTRYPOINT ["tini", "--", "node", "/opt/llorch/dist/cli/llorch.js"]
CMD ["--help"]
HEALTHCHECK NONE

# CUDA: node-llama-cpp's CUDA build needs the CUDA 13 runtime (libcudart, libcublas) in the image;
# the driver's libcuda.so.1 comes from the host through the NVIDIA Container Toolkit.
FROM base AS cuda
COPY --from=deps-cuda /opt/llorch/node_modules node_modules
COPY --from=nvidia/cuda:13.0.0-runtime-ubuntu24.04 /usr/local/cuda/lib64/libcudart.so.13* /usr/local/cuda/lib64/libcublas.so.13* /usr/local/cuda/lib64/libcublasLt.so.13* /usr/local/cuda/lib64/
ENV LD_LIBRARY_PATH=/usr/local/cuda/lib64 NVIDIA_VISIBLE_DEVICES=all NVIDIA_DRIVER_CAPABILITIES=compute,utility
# Numeric, so Kubernetes' runAsNonRoot can check it: uid 1000 is the image's "node" user.
USER 1000:1000

# The default target: the CPU build for core, the edge and CPU sidecars.
FROM base AS cpu
COPY --from=deps-cpu /opt/llorch/node_modules node_modules
USER 1000:1000
