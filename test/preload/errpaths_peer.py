#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""The kernel-side peer of errpaths.c (preload-errpaths). On ADDR, ports BASE+k:
  +0 TCP echo (counts the connections that ended: the "eofs" command)
  +1 TCP: accepts and closes at once (a FIN; the peer's later writes get a RST)
  +2 TCP: accepts and resets (SO_LINGER 0)
  +3 TCP: accepts and reads nothing until the "drain" command (small receive buffer)
  +4 nothing listens (a RST: ECONNREFUSED)
  +5 UDP echo
  +6 UDP control, one datagram a command, one reply:
     "eofs" -> count; "drain" -> "ok" (port +3 reads from now on); "hold" -> "ok" (its
     new connections read nothing again); "connect IP PORT" -> "ok" (connects to IP:PORT,
     sends "hello", echoes until EOF).
errpaths_peer.py ADDR BASE   (prints "ready" once every port is open)"""
import socket
import struct
import sys
import threading

ADDR, BASE = sys.argv[1], int(sys.argv[2])
lock = threading.Lock()
eofs = 0
held = []
draining = threading.Event()


def spawn(fn, *a):
    threading.Thread(target=fn, args=a, daemon=True).start()


def listener(port, rcvbuf=0):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if rcvbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)  # inherited by accepted ones
    s.bind((ADDR, port))
    s.listen(128)
    return s


def echo(c):
    global eofs
    try:
        while True:
            b = c.recv(65536)
            if not b:
                break
            c.sendall(b)
    except OSError:
        pass
    with lock:
        eofs += 1
    c.close()


def drain(c):
    draining.wait()
    try:
        while c.recv(1 << 20):
            pass
    except OSError:
        pass
    c.close()


def serve(ls, mode):
    while True:
        c, _ = ls.accept()
        if mode == "echo":
            spawn(echo, c)
        elif mode == "close":
            c.close()
        elif mode == "reset":
            c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            c.close()
        elif mode == "hold":
            with lock:
                held.append(c)
            spawn(drain, c)


def active(ip, port):
    try:
        c = socket.create_connection((ip, port), timeout=10)
        c.settimeout(None)
        c.sendall(b"hello")
        echo(c)
    except OSError as e:
        print("connect %s:%d: %s" % (ip, port, e), flush=True)


def udp_echo(u):
    while True:
        b, a = u.recvfrom(65536)
        u.sendto(b, a)


def control(u):
    while True:
        b, a = u.recvfrom(1024)
        words = b.decode(errors="replace").split()
        reply = "err"
        if words == ["eofs"]:
            with lock:
                reply = str(eofs)
        elif words == ["drain"]:
            draining.set()
            reply = "ok"
        elif words == ["hold"]:
            draining.clear()  # connections made from now on wait for the next "drain"
            reply = "ok"
        elif len(words) == 3 and words[0] == "connect":
            spawn(active, words[1], int(words[2]))
            reply = "ok"
        u.sendto(reply.encode(), a)


spawn(serve, listener(BASE + 0), "echo")
spawn(serve, listener(BASE + 1), "close")
spawn(serve, listener(BASE + 2), "reset")
spawn(serve, listener(BASE + 3, 4096), "hold")
for port, fn in ((BASE + 5, udp_echo), (BASE + 6, control)):
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.bind((ADDR, port))
    spawn(fn, u)
print("ready", flush=True)
threading.Event().wait()
