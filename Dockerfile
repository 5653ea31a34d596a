# Loom's two images (not built in CI here: this machine cannot run containers).
#   docker build -t ghcr.io/<you>/loom:<tag> .                        the spindle + controller
#   docker build --target runner -t ghcr.io/<you>/loom-runner:<tag> .  the runner bundle
# The runner bundle carries its own Node, loader and libraries (scripts/build-runner-bundle.ts),
# so the runner image only needs `cp` for the install-runner init container: busybox.
FROM node:24-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY . .
RUN npm run build && npm prune --omit=dev --no-audit --no-fund

FROM docker.io/library/busybox:1.37 AS runner
COPY --from=build /src/dist/runner-bundle /loom-runner

FROM node:24-bookworm-slim AS loom
# git: Gen2 reads .tangled/workflows from knots with a sparse, shallow fetch.
RUN apt-get update \
  && apt-get install -y --no-install-recommends git ca-certificates \
  && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY --from=build /src/package.json ./
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist ./dist
USER 1000:1000
ENTRYPOINT ["node", "/app/dist/cli/main.js"]
CMD ["serve"]
