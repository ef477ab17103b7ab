#!/usr/bin/env bash
# Configures (once) and builds keel in build/ (or $KEEL_BUILD_DIR).
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${KEEL_BUILD_DIR:-build}
[ -f "$dir/build.ninja" ] || meson setup "$dir" >/dev/null
ninja -C "$dir"
