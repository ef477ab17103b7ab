#!/usr/bin/python3
# SPDX-License-Identifier: BSD-3-Clause
"""A raw TLS client for keel's interop tests: OpenSSL (Python's ssl) does the
handshake over memory BIOs, then the test sends a bad record as it is on the
wire and checks what keel answers.

  tls_client.py corrupt|oversized|truncated|after_close HOST PORT 1.3|1.2
Exit 0 when keel sent the expected alert (corrupt: bad_record_mac, oversized:
record_overflow, truncated: decode_error for a record cut short by our FIN) and
closed the connection; after_close: a record after our close_notify, and keel
closes."""
import socket
import ssl
import sys


def main():
    what, host, port, version = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    v = ssl.TLSVersion.TLSv1_3 if version == "1.3" else ssl.TLSVersion.TLSv1_2
    ctx.minimum_version = ctx.maximum_version = v
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(inc, out, server_side=False)
    sock = socket.create_connection((host, port), timeout=10)
    while True:
        try:
            obj.do_handshake()
            break
        except ssl.SSLWantReadError:
            sock.sendall(out.read())
            data = sock.recv(65536)
            if not data:
                print("connection closed during the handshake")
                return 1
            inc.write(data)
    sock.sendall(out.read())  # our Finished

    request = b"GET / HTTP/1.1\r\nHost: keel\r\n\r\n"
    if what == "corrupt":
        obj.write(request)
        rec = bytearray(out.read())
        rec[len(rec) // 2] ^= 0x01
        sock.sendall(bytes(rec))
        want = "BAD_RECORD_MAC"
    elif what == "oversized":
        # 2^14 + 2049 bytes announced: over both versions' ciphertext limit.
        sock.sendall(b"\x17\x03\x03\x48\x01" + bytes(200))
        want = "RECORD_OVERFLOW"
    elif what == "truncated":
        obj.write(request)
        rec = out.read()
        sock.sendall(rec[:-1])
        sock.shutdown(socket.SHUT_WR)  # the stream ends one byte short of the record
        want = "DECODE_ERROR"
    elif what == "after_close":
        try:
            obj.unwrap()
        except ssl.SSLWantReadError:
            pass
        # close_notify, then any record (keel refuses it before decrypting).
        sock.sendall(out.read() + b"\x17\x03\x03\x00\x20" + bytes(32))
        want = None
    else:
        print("unknown case", what)
        return 2

    error = ""
    closed = False
    try:
        while True:
            data = sock.recv(65536)
            if not data:
                closed = True
                break
            inc.write(data)
            if want is None:
                continue
            try:
                while obj.read(65536):
                    pass
            except ssl.SSLWantReadError:
                pass
            except ssl.SSLError as e:
                error = error or str(e)
    except socket.timeout:
        print("keel did not close the connection")
        return 1
    except ConnectionResetError:
        closed = True
    print(f"{what}: alert seen: {error or '-'}; closed: {closed}")
    if want is not None and want not in error.upper().replace(" ", "_"):
        return 1
    return 0 if closed else 1


sys.exit(main())
