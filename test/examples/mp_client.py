#!/usr/bin/python3
# SPDX-License-Identifier: BSD-3-Clause
# Long echo streams for the multi-process test (test/examples/mp.sh):
#   mp_client.py HOST PORT CONNS DIR
# opens CONNS connections to an echo service, writes their local ports to DIR/ports, and on
# each one sends 8 KiB at a time and checks that the same bytes come back, until DIR/stop
# appears. Then each live connection half-closes and must echo everything it sent before EOF.
# Prints one line per connection: "PORT intact BYTES" or "PORT reset BYTES" (the peer reset
# it: ECONNRESET or EPIPE) or "PORT error WHAT", then exits 0.
import os
import socket
import sys
import threading
import time

CHUNK = 8192


def pattern(off, n, salt):
    return bytes((off + i + salt) % 251 for i in range(n))


def run(host, port, s, stop, out, lock):
    lport = s.getsockname()[1]
    sent = got = 0
    try:
        # A short timeout: an echo that does not come is poked with one more byte, so a
        # connection whose server is gone meets whoever now gets its segments (a RST).
        s.settimeout(1)
        while not os.path.exists(stop):
            s.sendall(pattern(sent, CHUNK, lport))
            sent += CHUNK
            waits = 0
            while got < sent:
                try:
                    d = s.recv(65536)
                except socket.timeout:
                    waits += 1
                    if waits > 20:
                        raise
                    s.sendall(pattern(sent, 1, lport))
                    sent += 1
                    continue
                if not d:
                    raise EOFError("EOF before the echo")
                if d != pattern(got, len(d), lport):
                    raise ValueError(f"corrupt echo at {got}")
                got += len(d)
            time.sleep(0.01)
        s.shutdown(socket.SHUT_WR)
        s.settimeout(20)
        while True:
            d = s.recv(65536)
            if not d:
                break
            if d != pattern(got, len(d), lport):
                raise ValueError(f"corrupt echo at {got}")
            got += len(d)
        res = "intact" if got == sent else f"error short {got}/{sent}"
    except (ConnectionResetError, BrokenPipeError):
        res = "reset"
    except Exception as e:  # noqa: BLE001 - reported, the test decides
        res = f"error {e!r}"
    finally:
        s.close()
    with lock:
        out.append(f"{lport} {res} {got}")


def main():
    host, port, n, d = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    socks = [socket.create_connection((host, port), timeout=10) for _ in range(n)]
    with open(os.path.join(d, "ports.tmp"), "w") as f:
        f.write(" ".join(str(s.getsockname()[1]) for s in socks) + "\n")
    os.rename(os.path.join(d, "ports.tmp"), os.path.join(d, "ports"))
    out, lock = [], threading.Lock()
    ts = [threading.Thread(target=run, args=(host, port, s, os.path.join(d, "stop"), out, lock)) for s in socks]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    print("\n".join(sorted(out)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
