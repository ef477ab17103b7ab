#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# examples/udp_echo under the kernel: 1000 datagrams of 1 to 1472 bytes and 20 of 8000
# (fragmented both ways) come back identical, one at a time; a datagram to a closed
# port gets ICMP port unreachable (the kernel's connected socket sees ECONNREFUSED).
#   test/examples/udp.sh BUILD/examples     (root; exit 77 = skipped)
set -uo pipefail
source "$(dirname "$0")/ex_lab.sh"

ex_test_init ex-udp "$@"
ex_start udp_echo 7
udp_client() {
	lab_nsx /usr/bin/python3 - "$LAB_KEEL_IP" <<-'PY'
		import random, socket, sys
		host = sys.argv[1]
		s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
		s.settimeout(2)
		s.connect((host, 7))
		rng = random.Random(7)
		sizes = [rng.randint(1, 1472) for _ in range(1000)] + [8000] * 20
		for i, n in enumerate(sizes):
		    data = bytes(rng.getrandbits(8) for _ in range(n))
		    for attempt in range(3):  # a tap may drop a frame: retry, never accept wrong bytes
		        s.send(data)
		        try:
		            back = s.recv(65536)
		        except socket.timeout:
		            continue
		        if back != data:
		            sys.exit(f"datagram {i}: {len(back)} bytes back, not the {n} sent")
		        break
		    else:
		        sys.exit(f"datagram {i} ({n} bytes): no echo after 3 tries")
		print(f"udp: {len(sizes)} datagrams echoed intact")
		c = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
		c.settimeout(2)
		c.connect((host, 9))
		c.send(b"anyone?")
		try:
		    c.recv(100)
		    sys.exit("closed port: got an answer")
		except ConnectionRefusedError:
		    print("udp: closed port -> ICMP port unreachable (ECONNREFUSED)")
		except socket.timeout:
		    sys.exit("closed port: no ICMP port unreachable")
	PY
}
lab_check "udp_echo: 1020 datagrams intact, port unreachable for a closed port" udp_client
ex_stop
lab_test_end
