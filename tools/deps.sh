#!/usr/bin/env bash
# Installs what keel needs to build and test, from Debian's archive only, and sets up
# hugepages. Safe to run any number of times: it installs only what is missing.
#   tools/deps.sh            build + test dependencies
#   tools/deps.sh --build    build dependencies only
set -euo pipefail

build_pkgs=(g++ meson ninja-build pkg-config libdpdk-dev libboost-dev catch2 libssl-dev)
test_pkgs=(clang libclang-rt-14-dev iproute2 iputils-ping iputils-arping ethtool tcpdump
           python3 python3-scapy nftables curl ncat wrk iperf3 sockperf)

pkgs=("${build_pkgs[@]}")
[ "${1:-}" = "--build" ] || pkgs+=("${test_pkgs[@]}")

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "deps: missing packages: ${missing[*]} (run as root to install them)" >&2
    exit 1
  fi
  echo "deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Hugepages: multi-process DPDK (primary/secondary) and memif zero-copy need them;
# single-process runs use --no-huge. Only root can reserve them; others skip.
if [ "$(id -u)" = 0 ] && [ "${KEEL_HUGEPAGES:-256}" -gt 0 ]; then
  want=${KEEL_HUGEPAGES:-256}
  cur=$(cat /proc/sys/vm/nr_hugepages)
  [ "$cur" -ge "$want" ] || echo "$want" > /proc/sys/vm/nr_hugepages || true
  if ! mountpoint -q /dev/hugepages; then
    mkdir -p /dev/hugepages
    mount -t hugetlbfs nodev /dev/hugepages || echo "deps: could not mount hugetlbfs (only multi-process tests need it)" >&2
  fi
fi
echo "deps: ok"
