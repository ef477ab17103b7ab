#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# Out-of-tree use: `meson install --destdir` the build, then, against that copy only
# (keel.pc, the installed headers and libkeel; never the source tree):
#  - every public header compiles on its own and includes no src/ header;
#  - the installed examples build with `g++ -std=c++20 $(pkg-config --cflags --libs keel)`,
#    link to the installed libkeel, and start: --help exits 0, a bad config file or a bad
#    KEEL_ADDR exits 1 naming the problem, and echo_server on a net_ring port listens and
#    exits 0 on SIGINT.
#   test/examples/install.sh BUILD_DIR
set -uo pipefail
build=$(cd "$1" && pwd)
tmp=$(mktemp -d /tmp/keel-install.XXXXXX)
pid=""
trap '[ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null; rm -rf "$tmp"' EXIT
fails=0
check() {  # check DESCRIPTION COMMAND...
	local what=$1
	shift
	if "$@"; then echo "  ok    $what"; else echo "  FAIL  $what"; fails=$((fails + 1)); fi
}

dest=$tmp/dest
meson install -C "$build" --destdir "$dest" --no-rebuild --quiet >"$tmp/install.log" 2>&1 ||
	{ cat "$tmp/install.log"; echo "FAIL: meson install"; exit 1; }
pc=$(find "$dest" -name keel.pc | head -n1)
inc=$(find "$dest" -type d -path '*/include/keel' | head -n1)
lib=$(find "$dest" -name 'libkeel.so' | head -n1)
exdir=$(find "$dest" -type d -path '*/keel/examples' | head -n1)
check "keel.pc installed" [ -n "$pc" ]
check "headers installed" [ -n "$inc" ] && [ -f "$inc/keel.hpp" ]
check "libkeel.so and libkeel.a installed" [ -n "$lib" ] && [ -f "${lib%.so}.a" ]
check "example sources installed" [ -n "$exdir" ] && [ -f "$exdir/echo_server.cpp" ]
[ "$fails" = 0 ] || { echo "FAIL: install"; exit 1; }
echo "installed: $pc"
sed 's/^/    /' "$pc"

# keel.pc is relocatable (prefix=${pcfiledir}/../../..): it works where --destdir put it.
# (PKG_CONFIG_SYSROOT_DIR would prefix libdpdk's paths with $dest too.)
grep -q "^prefix=\${pcfiledir}" "$pc" || { echo "FAIL: keel.pc is not relocatable (meson configure -Dpkgconfig.relocatable=true)"; exit 1; }
export PKG_CONFIG_PATH=$(dirname "$pc")
flags=$(pkg-config --cflags --libs keel) || { echo "FAIL: pkg-config keel"; exit 1; }
echo "pkg-config --cflags --libs keel: $flags"
check "Cflags point into the installed copy" grep -q -- "-I$dest" <<<"$(pkg-config --cflags keel)"
check "Libs name -lkeel and -lrte_net_ring" bash -c 'grep -q -- "-lkeel" <<<"$1" && grep -q -- "-lrte_net_ring" <<<"$1"' _ "$flags"

# Each public header on its own (the -I is the installed include dir only).
src_tree=$(cd "$(dirname "$0")/../.." && pwd)
for h in "$inc"/*.hpp; do
	name=keel/$(basename "$h")
	# shellcheck disable=SC2086  # flags are words
	check "#include <$name> compiles standalone" \
		bash -c 'echo "#include <$1>" | g++ -std=c++20 -fsyntax-only -Wall -Wextra -Werror -x c++ $2 -' _ "$name" "$(pkg-config --cflags keel)"
	# What it pulls in: nothing from the source tree.
	deps=$(echo "#include <$name>" | g++ -std=c++20 -M -x c++ $(pkg-config --cflags keel) - 2>/dev/null)
	check "<$name> pulls in no source-tree header" bash -c '! grep -q -- "$1" <<<"$2"' _ "$src_tree" "$deps"
done

# The installed examples, built out of tree.
cd "$tmp" || exit 1
export LD_LIBRARY_PATH=$(dirname "$lib")
for ex in echo_server echo_client http_server bulk udp_echo; do
	# shellcheck disable=SC2086
	check "$ex builds from the installed copy" g++ -std=c++20 -O1 -Wall -Wextra -o "$ex" "$exdir/$ex.cpp" $flags
done
check "echo_server links the installed libkeel" grep -q "$dest" <<<"$(ldd ./echo_server | grep libkeel)"
out=$(./echo_server --help 2>&1)
check "echo_server --help: usage, status 0" bash -c '[ "$1" = 0 ] && grep -q usage <<<"$2"' _ $? "$out"
./echo_server --config "$tmp/missing.conf" >"$tmp/out" 2>&1
rc=$?
check "a missing config file: status 1, the file named" bash -c '[ "$1" = 1 ] && grep -q "missing.conf: No such file" "$2"' _ $rc "$tmp/out"
printf 'instances = 2\nbogus = 1\n' >"$tmp/bad.conf"
./echo_server --config "$tmp/bad.conf" >"$tmp/out" 2>&1
rc=$?
sed 's/^/    /' "$tmp/out"
check "a bad config file: status 1, FILE:LINE named" bash -c '[ "$1" = 1 ] && grep -q "bad.conf:2" "$2"' _ $rc "$tmp/out"
KEEL_ADDR=1.2.3 ./http_server >"$tmp/out" 2>&1
rc=$?
sed 's/^/    /' "$tmp/out"
check "a bad KEEL_ADDR: status 1, the variable named" bash -c '[ "$1" = 1 ] && grep -q "KEEL_ADDR" "$2"' _ $rc "$tmp/out"
KEEL_ADDR=198.18.0.2/24 ./bulk nonsense >"$tmp/out" 2>&1
rc=$?
check "bulk with a bad command: usage, status 2" bash -c '[ "$1" = 2 ] && grep -q usage "$2"' _ $rc "$tmp/out"

# It starts for real: EAL, a net_ring port, a listener; SIGINT stops it with status 0.
cat >"$tmp/ring.conf" <<-CONF
	eal = -l 0 --no-huge -m 256 --no-pci --no-shconf --log-level=lib.eal:error --vdev net_ring0
	[port]
	device = net_ring0
	address = 198.18.99.2/24
CONF
./echo_server --config "$tmp/ring.conf" 7 >"$tmp/out" 2>&1 &
pid=$!
for _ in $(seq 100); do grep -q listening "$tmp/out" && break; kill -0 $pid 2>/dev/null || break; sleep 0.1; done
sed 's/^/    /' "$tmp/out"
check "echo_server starts on a net_ring port and listens" grep -q "echo_server: listening on port 7" "$tmp/out"
kill -INT $pid 2>/dev/null
wait $pid
check "echo_server exits 0 after SIGINT" [ $? = 0 ]

if [ "$fails" = 0 ]; then echo "PASS: out-of-tree build"; exit 0; fi
echo "FAIL: out-of-tree build ($fails check(s) failed)"
exit 1
