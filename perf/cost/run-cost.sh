#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# perf/cost/run-cost.sh [--quick] [--transactions N] [--build-dir DIR] [--no-build] [--server tcp|api]
#
# Benchmark 5 of issue 7, "Cost": CPU instructions per 64 B request/response on
# the keel server. Runs perf/cost/cost_rr (two keel stacks in one thread over
# net_ring, see the comment at the top of cost_rr.cpp) under callgrind, which
# counts instructions exactly and repeatably on a machine whose timings are
# noisy (these VMs have no hardware counters for perf stat). cost_rr tells
# callgrind to count only its measured phases and dumps one profile per side:
# "server" (stack B's polls: rx, IPv4, TCP, the echo application, tx) and
# "client" (stack A's polls).
#
# Prints the server's and the client's instructions per transaction, the
# server's top 10 functions by self and by inclusive cost (per transaction:
# where the time goes), a `bench cost:` key=value summary line and, last:
#   cost: keel 5492 instr, kernel n/a instr, ratio n/a
# keel's figure is the SERVER's instructions per transaction.
#
# Why the kernel is "n/a": the kernel's TCP runs in kernel mode, which callgrind
# cannot see (a system call is one event with no instructions behind it), and
# without a PMU nothing else here counts kernel instructions. Anything offered
# in its place would be a different quantity dressed up as instructions: CPU
# time times an assumed IPC is a guess, and a timing is what benchmark rr
# already reports side by side. So the line says n/a rather than a number that
# is not comparable. On a machine with hardware counters the kernel's figure
# would be `perf stat -e instructions` (user + kernel) on a busy-polling kernel
# echo server divided by its transactions, and keel's the same on keel-pmd; the
# ratio would then be kernel/keel (fewer instructions is better for keel).
#
# --server api: the server's echo is written against the native API (batched
# events, Buffers; include/keel/stack.hpp) instead of TCP's callbacks; the
# difference between the two figures is what the API layer costs.
#
# --quick: 5,000 transactions per side (a few seconds under callgrind);
# default 50,000. The counts are the same per transaction either way (steady
# state after the warm-up); two runs agree to better than 0.1%.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
build_dir="$repo/build"
transactions=50000
do_build=1
server_kind=tcp

usage() {
  echo "usage: $0 [--quick] [--transactions N] [--build-dir DIR] [--no-build] [--server tcp|api]" >&2
  exit 2
}
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) transactions=5000 ;;
    --transactions) [ $# -ge 2 ] || usage; transactions=$2; shift ;;
    --build-dir) [ $# -ge 2 ] || usage; build_dir=$2; shift ;;
    --no-build) do_build=0 ;;
    --server) [ $# -ge 2 ] || usage; server_kind=$2; shift
      case "$server_kind" in tcp|api) ;; *) usage ;; esac ;;
    -h|--help) usage ;;
    *) usage ;;
  esac
  shift
done
case "$transactions" in ''|*[!0-9]*|0) usage ;; esac

fail() {
  echo "cost: FAILED ($1)" >&2
  echo "cost: keel n/a instr, kernel n/a instr, ratio n/a"
  exit 1
}

tmp=$(mktemp -d /tmp/keel-cost.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

# COST_RR=path runs that binary instead (and builds nothing).
bin="${COST_RR:-$build_dir/perf/cost/cost_rr}"
if [ "$do_build" = 1 ] && [ -z "${COST_RR:-}" ]; then
  if ! ninja -C "$build_dir" perf/cost/cost_rr >"$tmp/build.log" 2>&1; then
    tail -20 "$tmp/build.log" >&2
    fail "ninja -C $build_dir perf/cost/cost_rr failed (does perf/meson.build have subdir('cost')?)"
  fi
fi
[ -x "$bin" ] || fail "$bin not built (perf/meson.build needs subdir('cost'))"
command -v valgrind >/dev/null && command -v callgrind_annotate >/dev/null ||
  fail "valgrind not installed (Debian: apt install valgrind)"

# --instr-atstart=no: EAL, ports and the handshake run uninstrumented (fast);
# --collect-atstart=no: cost_rr toggles collection around one side's polls.
echo "cost: cost_rr under callgrind, $transactions transactions per side ..."
start=$(date +%s.%N)
if ! valgrind --tool=callgrind --instr-atstart=no --collect-atstart=no \
    --callgrind-out-file="$tmp/cg.out" --log-file="$tmp/valgrind.log" \
    "$bin" --transactions "$transactions" --server "$server_kind" >"$tmp/stdout" 2>"$tmp/stderr"; then
  cat "$tmp/stdout" "$tmp/stderr" >&2
  tail -5 "$tmp/valgrind.log" >&2
  fail "cost_rr exited with an error"
fi
elapsed=$(echo "$(date +%s.%N) - $start" | bc)
grep -E '^(cost_rr phase|bench cost_rr)' "$tmp/stdout" || true

# The profile a side dumped (CALLGRIND_DUMP_STATS_AT names it in its header).
profile_of() {
  grep -l "^desc: Trigger: Client Request: $1\$" "$tmp"/cg.out.* 2>/dev/null | head -1
}
# Instructions in a profile (its `totals:` line).
totals_of() { sed -n 's/^totals: *//p' "$1" | head -1; }
# Transactions a phase ran, from cost_rr's own line.
tx_of() { sed -n "s/^cost_rr phase: side=$1 transactions=\([0-9]*\).*/\1/p" "$tmp/stdout"; }

server_prof=$(profile_of server)
client_prof=$(profile_of client)
[ -n "$server_prof" ] && [ -n "$client_prof" ] || fail "callgrind wrote no per-side profile"
server_tx=$(tx_of server)
client_tx=$(tx_of client)
[ -n "$server_tx" ] && [ -n "$client_tx" ] || fail "cost_rr printed no phase line"
server_ir=$(totals_of "$server_prof")
client_ir=$(totals_of "$client_prof")
per_tx() { echo "scale=1; $1 / $2" | bc; }
server=$(per_tx "$server_ir" "$server_tx")
client=$(per_tx "$client_ir" "$client_tx")
total=$(echo "scale=1; $server + $client" | bc)

# Top functions of the server side, per transaction. callgrind_annotate names
# cost centres file:function, and a function whose code is partly inlined from
# headers appears once per file: self costs are summed per function, inclusive
# costs take the largest entry (the others are parts of it). Names lose their
# directory, object and argument list.
top() {  # $1: yes|no (inclusive), $2: profile, $3: transactions
  callgrind_annotate --auto=no --threshold=100 --inclusive="$1" "$2" |
    awk -v incl="$1" -v n="$3" '
      /file:function/ { on = 1; getline; next }
      !on || !/^ *[0-9,]+ \(/ { next }
      {
        count = $1; gsub(",", "", count); count += 0
        name = $0
        sub(/^ *[0-9,]+ \( *[0-9.]+%\) +/, "", name)
        sub(/ \[\/[^]]*\]$/, "", name)            # the object file
        gsub(/\(anonymous namespace\)/, "{anon}", name)
        sub(/ \[clone [^]]*\]/, "", name)
        sub(/\(.*$/, "", name)                    # the argument list
        sub(/^.*\//, "", name)                    # the directory of the source file
        sub(/^[^:]*:/, "", name)                  # the source file (??? for no debug info)
        if (incl == "yes") { if (count > sum[name]) sum[name] = count }
        else sum[name] += count
      }
      END { for (f in sum) printf "%12.1f  %s\n", sum[f] / n, f }' |
    sort -rn |
    grep -v -E ' (keel::perf::\{anon\}::(Bench::|run$)|main$|__libc_start)' |
    head -10
}

echo
echo "cost: server (stack B) instructions per transaction, top 10 by self cost:"
top no "$server_prof" "$server_tx"
echo
echo "cost: server top 10 by inclusive cost (per transaction):"
top yes "$server_prof" "$server_tx"
echo
printf 'cost: instructions per 64 B request/response: server %s, client %s, total %s (%.1f s)\n' \
  "$server" "$client" "$total" "$elapsed"
printf 'bench cost: size=64 transactions=%s server_instr=%s client_instr=%s total_instr=%s seconds=%.2f ok\n' \
  "$server_tx" "$server" "$client" "$total" "$elapsed"
printf 'cost: keel %.0f instr, kernel n/a instr, ratio n/a\n' "$server"
