#!/usr/bin/env bash
# Installs what keel needs to build and test, from Debian's archive only, and sets up
# hugepages. Safe to run any number of times: it installs only what is missing.
#   tools/deps.sh            build + test dependencies
#   tools/deps.sh --build    build dependencies only
set -euo pipefail

build_pkgs=(g++ meson ninja-build pkg-config libdpdk-dev libboost-dev catch2 libssl-dev)
test_pkgs=(clang libclang-rt-14-dev iproute2 iputils-ping iputils-arping ethtool tcpdump
           python3 python3-scapy nftables curl ncat wrk iperf3 sockperf
           python3-matplotlib valgrind nginx redis-server redis-tools openssl)

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
  # nginx's postinst starts the service; perf/ runs its own nginx (one worker, in a namespace).
  # A policy-rc.d that says 101 keeps invoke-rc.d from starting anything during the install;
  # ours is removed afterwards (one that existed before is left alone).
  policy=/usr/sbin/policy-rc.d
  own_policy=0
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\n# tools/deps.sh: no service starts during its install\nexit 101\n' >"$policy"
    chmod 755 "$policy"
    own_policy=1
    trap 'rm -f "$policy"' EXIT
  fi
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  if [ "$own_policy" = 1 ]; then
    rm -f "$policy"
    trap - EXIT
  fi
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
