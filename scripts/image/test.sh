#!/usr/bin/env bash
# `npm run test:image`: builds the image (scripts/image/build.sh, the base cached by its inputs)
# and runs test/image/*.image.test.ts against it, as separate podman containers.
set -euo pipefail
cd "$(dirname "$0")/../.."

started=$(date +%s)
IMAGE=$(bash scripts/image/build.sh)
WATCHER_BASE_IMAGE=$(node -p 'require("./dist/image/image.json").base')
echo "image: $IMAGE ready after $(($(date +%s) - started)) s" >&2

# The project's Node (node_modules/.bin/node, from the node@24 dev dependency) runs jest.
export PATH="$PWD/node_modules/.bin:$PATH"
WATCHER_IMAGE=$IMAGE WATCHER_BASE_IMAGE=$WATCHER_BASE_IMAGE \
  NODE_OPTIONS="${NODE_OPTIONS:+$NODE_OPTIONS }--experimental-vm-modules" \
  jest --config test/image/jest.config.json "$@"
echo "image: build and tests took $(($(date +%s) - started)) s" >&2
