#!/usr/bin/python3
# SPDX-License-Identifier: BSD-3-Clause
"""Kernel-side TCP clients for keel's interop tests (standard library only).

  tcp_client.py download HOST PORT N          GET /bytes/N, check length and pattern (byte i = i mod 251)
  tcp_client.py keepalive HOST PORT COUNT     COUNT sequential GETs on one keep-alive connection
  tcp_client.py echo HOST PORT BYTES [SEED]   random BYTES through the echo service, compared
  tcp_client.py echo-many HOST PORT CONNS BYTES [AT_ONCE]   CONNS echo connections (asyncio),
                                              at most AT_ONCE open at a time (default: all)
  tcp_client.py serve-echo PORT               kernel echo server (for keel as the client): echoes, half-closes
Prints one result line; exit status 0 only if everything was intact.
"""
import asyncio
import hashlib
import http.client
import os
import random
import socket
import sys
import threading
import time

PATTERN = bytes(i % 251 for i in range(251 * 256))


def pattern_ok(data: bytes, offset: int) -> bool:
    start = offset % 251
    n = len(data)
    pos = 0
    while pos < n:
        chunk = min(n - pos, len(PATTERN) - start)
        if data[pos:pos + chunk] != PATTERN[start:start + chunk]:
            return False
        pos += chunk
        start = 0
    return True


def download(host, port, n):
    t0 = time.monotonic()
    conn = http.client.HTTPConnection(host, port, timeout=60)
    conn.request("GET", f"/bytes/{n}")
    resp = conn.getresponse()
    if resp.status != 200:
        print(f"download {n}: HTTP {resp.status}")
        return 1
    clen = int(resp.getheader("Content-Length", "-1"))
    got = 0
    while True:
        chunk = resp.read(1 << 20)
        if not chunk:
            break
        if not pattern_ok(chunk, got):
            print(f"download {n}: pattern mismatch near byte {got}")
            return 1
        got += len(chunk)
    dt = time.monotonic() - t0
    ok = got == n and clen == n
    print(f"download {n}: {got} bytes, content-length {clen}, {'intact' if ok else 'WRONG LENGTH'}, "
          f"{dt:.2f} s, {got * 8 / dt / 1e6 if dt > 0 else 0:.1f} Mbit/s")
    return 0 if ok else 1


def keepalive(host, port, count):
    conn = http.client.HTTPConnection(host, port, timeout=30)
    conn.connect()
    local = conn.sock.getsockname()
    for i in range(count):
        n = (i * 37) % 3000
        conn.request("GET", f"/bytes/{n}")
        resp = conn.getresponse()
        body = resp.read()
        if resp.status != 200 or len(body) != n or not pattern_ok(body, 0):
            print(f"keepalive: request {i} failed (status {resp.status}, {len(body)} bytes)")
            return 1
        if conn.sock is None or conn.sock.getsockname() != local:
            print(f"keepalive: connection was not kept alive at request {i}")
            return 1
    print(f"keepalive: {count} requests on one connection, all intact")
    return 0


def echo(host, port, nbytes, seed=1):
    rng = random.Random(seed)
    data = rng.randbytes(nbytes)
    s = socket.create_connection((host, port), timeout=60)
    err = []

    def sender():
        try:
            s.sendall(data)
            s.shutdown(socket.SHUT_WR)
        except OSError as e:
            err.append(e)

    t = threading.Thread(target=sender)
    t0 = time.monotonic()
    t.start()
    got = bytearray()
    while len(got) < nbytes:
        chunk = s.recv(1 << 20)
        if not chunk:
            break
        got += chunk
    t.join()
    s.close()
    dt = time.monotonic() - t0
    ok = bytes(got) == data and not err
    print(f"echo {nbytes}: {len(got)} bytes back, {'identical' if ok else 'DIFFERENT'} "
          f"(sha256 {hashlib.sha256(got).hexdigest()[:16]}), {dt:.2f} s")
    return 0 if ok else 1


async def echo_one(host, port, nbytes, seed, sem):
    async with sem:
        data = random.Random(seed).randbytes(nbytes)
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), 30)
        writer.write(data)
        await writer.drain()
        got = await asyncio.wait_for(reader.readexactly(nbytes), 60)
        writer.close()
        await writer.wait_closed()
        return got == data


async def echo_many_main(host, port, conns, nbytes, at_once=None):
    sem = asyncio.Semaphore(at_once or conns)
    t0 = time.monotonic()
    results = await asyncio.gather(*(echo_one(host, port, nbytes, i, sem) for i in range(conns)),
                                   return_exceptions=True)
    dt = time.monotonic() - t0
    good = sum(1 for r in results if r is True)
    errors = [r for r in results if isinstance(r, Exception)]
    print(f"echo-many: {good}/{conns} connections echoed {nbytes} bytes intact, "
          f"{at_once or conns} at a time, {dt:.1f} s ({conns / dt if dt > 0 else 0:.0f} conn/s)"
          + (f", {len(errors)} errors, first: {errors[0]!r}" if errors else ""))
    return 0 if good == conns else 1


def serve_echo(port):
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("0.0.0.0", port))
    ls.listen(16)
    print(f"serve-echo: listening on {port}", flush=True)
    c, peer = ls.accept()
    total = 0
    while True:
        chunk = c.recv(1 << 16)
        if not chunk:
            break
        total += len(chunk)
        c.sendall(chunk)
    c.shutdown(socket.SHUT_WR)  # half-close after the peer's FIN
    time.sleep(0.5)
    c.close()
    print(f"serve-echo: {peer[0]} sent {total} bytes, echoed, closed", flush=True)
    return 0


def main(argv):
    if len(argv) < 2:
        print(__doc__)
        return 2
    cmd, args = argv[1], argv[2:]
    if cmd == "download":
        return download(args[0], int(args[1]), int(args[2]))
    if cmd == "keepalive":
        return keepalive(args[0], int(args[1]), int(args[2]))
    if cmd == "echo":
        return echo(args[0], int(args[1]), int(args[2]), int(args[3]) if len(args) > 3 else 1)
    if cmd == "echo-many":
        return asyncio.run(echo_many_main(args[0], int(args[1]), int(args[2]), int(args[3]),
                                          int(args[4]) if len(args) > 4 else None))
    if cmd == "serve-echo":
        return serve_echo(int(args[0]))
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
