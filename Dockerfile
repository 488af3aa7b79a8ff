# syntax=docker/dockerfile:1
# Same Node major as the project's node@24 dev dependency. Where no image registry can be reached,
# scripts/image/build.sh builds a stand-in (scripts/image/base.sh) and passes it as NODE_IMAGE.
ARG NODE_IMAGE=node:24-bookworm-slim

FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
# Scripts are skipped: the node@24 dev dependency's binary is not needed in an image that
# already runs Node 24, so the compiler is started with the image's own node.
RUN --mount=type=cache,target=/root/.npm,sharing=locked \
    npm ci --no-audit --no-fund --ignore-scripts
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
# No source maps: the image holds no src/ for them to point at.
RUN node node_modules/typescript/bin/tsc -p tsconfig.build.json --sourceMap false

FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN --mount=type=cache,target=/root/.npm,sharing=locked \
    npm ci --omit=dev --no-audit --no-fund --ignore-scripts

FROM ${NODE_IMAGE}
ENV NODE_ENV=production \
    STATE_DIR=/data \
    HTTP_PORT=8080
WORKDIR /app
# The program is root's and read-only to the user that runs it.
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json ./
COPY config ./config
# /data belongs to node and to group 0, group-writable: the image runs as uid 1000, and also as
# any uid in group 0 (OpenShift's restricted SCC, `--user 123456:0`).
RUN mkdir -p /data && chown 1000:0 /data && chmod 0775 /data
# Numeric, so that Kubernetes' runAsNonRoot can tell it is not root (uid 1000 is `node`).
USER 1000:1000
VOLUME ["/data"]
EXPOSE 8080
STOPSIGNAL SIGTERM
# No curl in the image: Node itself asks /healthz, and gives up after 4 s on its own, so a
# process that is alive but does not answer (stopped, wedged) fails the check.
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.HTTP_PORT||8080)+'/healthz',{signal:AbortSignal.timeout(4000)}).then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
# Build facts as OCI labels (scripts/image/build.sh passes them); last, so that a new commit
# changes no layer above.
ARG VERSION=unknown
ARG REVISION=unknown
ARG SOURCE=unknown
ARG CREATED=unknown
LABEL org.opencontainers.image.title="dataframer-run-watcher" \
      org.opencontainers.image.description="Watches DataFramer generation runs until they finish; one log line and a signed webhook per run." \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.licenses="MIT"
# Exec form, no shell: node is PID 1 and gets SIGTERM itself; main.ts handles it. 8 MB
# semi-spaces keep a 10,000-run watcher near 140 MB (V8 sizes them by the host's memory);
# NODE_OPTIONS stays free for the operator.
CMD ["node", "--max-semi-space-size=8", "dist/main.js"]
