#!/usr/bin/env bash
# keel's main job: installs what is missing, builds, and runs the loopback demo
# (two keel stacks in one process joined by net_ring; no NIC, no hugepages).
set -euo pipefail
cd "$(dirname "$0")/.."
tools/deps.sh --build
tools/build.sh
exec build/tools/keel-pmd/keel-pmd --loopback "$@"
