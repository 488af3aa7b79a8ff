#!/usr/bin/env bash
# Builds the image with podman and prints its name on stdout; progress goes to stderr.
#
# The base: NODE_IMAGE if set; else the official node:24-bookworm-slim where it can be pulled;
# else the stand-in from scripts/image/base.sh (built once, cached by its inputs).
# Beside the image, in $IMAGE_OUT (default dist/image/): sbom.cdx.json (CycloneDX, by
# `npm sbom --omit dev` on the dependencies installed in the image) and image.json
# (name, base, labels, build seconds, bytes of the image's own layers above the base).
#
# Env: IMAGE (default localhost/dataframer-run-watcher:test), NODE_IMAGE, IMAGE_OUT,
# IMAGE_SOURCE (the org.opencontainers.image.source label; default: package.json's repository,
# else the git remote `origin` without credentials, else "unknown").
set -euo pipefail
cd "$(dirname "$0")/../.."

log() { echo "image: $*" >&2; }

IMAGE=${IMAGE:-localhost/dataframer-run-watcher:test}
IMAGE_OUT=${IMAGE_OUT:-dist/image}
OFFICIAL_BASE=node:24-bookworm-slim

command -v podman >/dev/null || {
  echo "image: podman is missing (apt-get install podman runc uidmap slirp4netns fuse-overlayfs debootstrap)" >&2
  exit 1
}

if [ -z "${NODE_IMAGE:-}" ]; then
  if podman image exists "$OFFICIAL_BASE" ||
    timeout 300 podman pull -q "$OFFICIAL_BASE" >/dev/null 2>&1; then
    NODE_IMAGE=$OFFICIAL_BASE
  else
    log "$OFFICIAL_BASE cannot be pulled here; using the stand-in base (scripts/image/base.sh)"
    NODE_IMAGE=$(bash scripts/image/base.sh)
  fi
fi
log "base $NODE_IMAGE"

VERSION=$(node -p 'require("./package.json").version')
REVISION=$(git rev-parse HEAD 2>/dev/null || echo unknown)
CREATED=$(git log -1 --format=%cI 2>/dev/null || date -u +%Y-%m-%dT%H:%M:%SZ)
SOURCE=${IMAGE_SOURCE:-$(node -p '
  const r = require("./package.json").repository;
  (typeof r === "string" ? r : r?.url) ?? ""
')}
if [ -z "$SOURCE" ]; then
  # userinfo (a token) never goes into a label.
  SOURCE=$(git remote get-url origin 2>/dev/null | sed -E 's#^([a-z+]+://)[^/@]*@#\1#') || true
fi
SOURCE=${SOURCE:-unknown}

started=$(date +%s)
log "podman build $IMAGE"
build_log=$(mktemp "${TMPDIR:-/tmp}/image-build.XXXXXX")
trap 'rm -f "$build_log"' EXIT
if ! podman build --isolation=chroot --network=host --format docker \
  --build-arg "NODE_IMAGE=$NODE_IMAGE" \
  --build-arg "VERSION=$VERSION" \
  --build-arg "REVISION=$REVISION" \
  --build-arg "SOURCE=$SOURCE" \
  --build-arg "CREATED=$CREATED" \
  --tag "$IMAGE" . >"$build_log" 2>&1; then
  tail -n 60 "$build_log" >&2
  exit 1
fi
seconds=$(($(date +%s) - started))
# Earlier builds of this image, now untagged, go; the build cache (their unlabelled layers) stays.
podman image prune -f --filter "label=org.opencontainers.image.title=dataframer-run-watcher" >/dev/null

# The image's own layers: every layer whose digest the base does not have.
layer_bytes=$(
  {
    podman image inspect --format '{{range .RootFS.Layers}}{{println .}}{{end}}' "$NODE_IMAGE"
    echo ---
    podman image inspect --format '{{range .RootFS.Layers}}{{println .}}{{end}}' "$IMAGE"
  } | node -e '
    const [base, image] = require("fs").readFileSync(0, "utf8").split("---\n")
      .map((part) => part.split("\n").filter(Boolean));
    const own = image.filter((layer) => !base.includes(layer));
    console.log(JSON.stringify(own));
  '
)
own_size=$(podman image inspect --format '{{.Size}}' "$IMAGE")
base_size=$(podman image inspect --format '{{.Size}}' "$NODE_IMAGE")
layers_size=$((own_size - base_size))
log "built in ${seconds} s; own layers ${layers_size} bytes ($(node -p "($layers_size/1e6).toFixed(1)") MB) above the base"

mkdir -p "$IMAGE_OUT"
# The SBOM of what the image holds: npm reads /app's installed tree inside the image. Its
# package.json is swapped for one without devDependencies, which `npm sbom` would otherwise
# report missing (ESBOMPROBLEMS) even with --omit dev; and a lockfile-only SBOM leaves out
# production packages that dev ones also use. npm names the root after its folder (/app): the
# name is set back to the package's.
sbom_dir=$(mktemp -d "${TMPDIR:-/tmp}/image-sbom.XXXXXX")
trap 'rm -f "$build_log"; rm -rf "$sbom_dir"' EXIT
node -e '
  const pkg = require("./package.json");
  delete pkg.devDependencies;
  require("fs").writeFileSync(process.argv[1], JSON.stringify(pkg, null, 2));
' "$sbom_dir/package.json"
podman --runtime "${PODMAN_RUNTIME:-runc}" run --rm --no-healthcheck --network=none --read-only \
  --ulimit nofile=1024:1024 --ulimit nproc=1024:1024 --user 0 --tmpfs /tmp \
  -v "$sbom_dir/package.json:/app/package.json:ro" \
  -e npm_config_cache=/tmp/npm-cache -e npm_config_logs_max=0 -e npm_config_update_notifier=false \
  --entrypoint npm "$IMAGE" sbom --omit dev --sbom-format cyclonedx >"$sbom_dir/sbom.json"
node -e '
  const fs = require("fs");
  const sbom = JSON.parse(fs.readFileSync(process.argv[1], "utf8"));
  sbom.metadata.component.name = require("./package.json").name;
  fs.writeFileSync(process.argv[2], JSON.stringify(sbom, null, 2) + "\n");
' "$sbom_dir/sbom.json" "$IMAGE_OUT/sbom.cdx.json"
log "SBOM $IMAGE_OUT/sbom.cdx.json"

IMAGE="$IMAGE" NODE_IMAGE="$NODE_IMAGE" SECONDS_="$seconds" LAYERS="$layer_bytes" \
  LAYERS_SIZE="$layers_size" node -e '
  const labels = JSON.parse(process.argv[1]);
  console.log(JSON.stringify({
    image: process.env.IMAGE,
    base: process.env.NODE_IMAGE,
    buildSeconds: Number(process.env.SECONDS_),
    ownLayers: JSON.parse(process.env.LAYERS),
    ownLayersBytes: Number(process.env.LAYERS_SIZE),
    labels,
  }, null, 2));
' "$(podman image inspect --format '{{json .Config.Labels}}' "$IMAGE")" >"$IMAGE_OUT/image.json"
echo "$IMAGE"
