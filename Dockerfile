# syntax=docker/dockerfile:1
# Loom's two images, each for linux/amd64 and linux/arm64 under one multi-arch tag:
#
#   loom    (default target) the spindle + controller: Node 24, git, /app. No runner bundle: the
#           server never runs one; workflow pods get theirs from the runner image.
#   runner  busybox + /loom-runner, the runner bundle of the image's own architecture; the Job's
#           install-runner init container copies it (images.runner in the config).
#
#   make docker-buildx IMG=ghcr.io/<you>/loom:<tag> RUNNER_IMG=ghcr.io/<you>/loom-runner:<tag>
#   make docker-build  IMG=...  RUNNER_IMG=...      (this machine's platform only)
#
# The build stages run on the build machine's platform ($BUILDPLATFORM) whatever the target, so
# nothing is emulated: the compiled TypeScript and the production node_modules are the same on
# every platform (no native modules), and the runner bundle of either architecture is built on
# either machine (scripts/build-runner-bundle.ts; hack/runner-cross.sh fetches the other
# architecture's Node from npm and its libraries from Debian). The final stages only copy.
# What each final stage holds is laid out by scripts/image-layout.ts, which test/image/ runs too
# (no container engine there): the tests start Loom from exactly these files.

FROM --platform=$BUILDPLATFORM docker.io/library/node:24-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY . .
RUN npx tsc -p tsconfig.build.json \
  && node scripts/image-layout.ts server /out/server

FROM build AS runner-build
ARG TARGETARCH
# binutils strips Node; for another architecture, that architecture's binutils.
RUN set -eux; \
  pkgs=binutils; \
  if [ "$TARGETARCH" != "$(dpkg --print-architecture)" ]; then \
    case "$TARGETARCH" in \
      arm64) pkgs="$pkgs binutils-aarch64-linux-gnu" ;; \
      amd64) pkgs="$pkgs binutils-x86-64-linux-gnu" ;; \
      *) echo "no runner bundle for linux/$TARGETARCH" >&2; exit 1 ;; \
    esac; \
  fi; \
  apt-get update; \
  apt-get install -y --no-install-recommends $pkgs; \
  rm -rf /var/lib/apt/lists/*; \
  bash hack/runner-cross.sh "$TARGETARCH"; \
  node scripts/image-layout.ts runner "$TARGETARCH" /out/runner

FROM docker.io/library/busybox:1.37 AS runner
COPY --from=runner-build /out/runner/ /

FROM docker.io/library/node:24-bookworm-slim AS loom
# git: Gen2 reads .tangled/workflows from knots with a sparse, shallow fetch.
RUN apt-get update \
  && apt-get install -y --no-install-recommends git ca-certificates \
  && rm -rf /var/lib/apt/lists/*
COPY --from=build /out/server/ /
WORKDIR /app
USER 1000:1000
ENTRYPOINT ["node", "--optimize-for-size", "/app/dist/cli/main.js"]
CMD ["serve"]
