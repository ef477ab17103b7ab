# SPDX-License-Identifier: BSD-3-Clause
"""The benchmarks perf/run knows: rr, stream, crr, mem, cost, http, shm (and preload, in preload.py).

Each takes (lab, ctx) and returns a Result: the runs it made (every summary line, parsed)
and its headline figures, printed last as `NAME: keel V UNIT, kernel V UNIT, ratio X.XX`
(the ratio oriented so that higher is better for keel). A benchmark fails (raises) only
when something did not run or printed what cannot be parsed; slow figures are reported,
never judged here.
"""
import json
import os
import re
import shlex
import shutil
import subprocess
import time

from . import lab as L

# One summary line, shared by keel-pmd's `bench` and kbench (docs/PERFORMANCE.md).
SUMMARY = re.compile(r"^bench (?P<kind>\w+): (?P<kv>(?:[a-z0-9_]+=\S+ )+)(?P<verdict>ok|FAILED \(.*\))\s*$")
HEADLINE = re.compile(r"^(?P<name>\w+): keel (?P<keel>[0-9.]+|n/a) (?P<ku>\S+), "
                      r"kernel (?P<kernel>[0-9.]+|n/a) (?P<nu>\S+), ratio (?P<ratio>[0-9.]+|n/a)$")


class BenchFailed(Exception):
    """The benchmark did not run, or printed something malformed. `result`: what it
    measured before (perf/run records those figures with the error)."""

    def __init__(self, msg, result=None):
        super().__init__(msg)
        self.result = result


def parse_summary(lines, kind):
    """The last `bench KIND: ...` line of `lines`: (dict of numbers, verdict, line)."""
    for line in reversed(lines):
        line = line.strip()
        if not line.startswith(f"bench {kind}:"):
            continue
        m = SUMMARY.match(line)
        if not m:
            raise BenchFailed(f"malformed summary line: {line!r}")
        kv = {}
        for tok in m.group("kv").split():
            k, v = tok.split("=", 1)
            try:
                kv[k] = float(v)
            except ValueError:
                raise BenchFailed(f"malformed value {tok!r} in {line!r}")
        return kv, m.group("verdict"), line
    raise BenchFailed(f"no 'bench {kind}:' summary line in the output:\n" + "\n".join(lines[-15:]))


class Result:
    def __init__(self, name):
        self.name = name
        self.runs = []       # every measurement, raw
        self.headline = []   # (name, keel, kernel, unit, ratio, note)
        self.failures = []   # runs that ended FAILED (...)
        self.notes = []

    def add_run(self, stack, where, mode, kind, args, kv, verdict, line, output=None):
        """One measurement: the parsed summary, and the tool's whole output (live table) raw."""
        self.runs.append(dict(stack=stack, where=where, mode=mode, kind=kind, args=args,
                              summary=kv, verdict=verdict, line=line, output=output or []))
        if verdict != "ok":
            self.failures.append(f"{stack} {where} {mode} {kind} {args}: {verdict}")
        return kv

    def find(self, **want):
        for r in self.runs:
            if all(r.get(k) == v or r["args"].get(k) == v for k, v in want.items()):
                return r["summary"]
        return None

    def line(self, name, keel, kernel, unit, higher_is_better=True, note=""):
        """A headline figure; ratio = keel/kernel (kernel/keel for latencies)."""
        ratio = None
        if keel is not None and kernel is not None and keel > 0 and kernel > 0:
            ratio = keel / kernel if higher_is_better else kernel / keel
        self.headline.append(dict(name=name, keel=keel, kernel=kernel, unit=unit, ratio=ratio,
                                  higher_is_better=higher_is_better, note=note))

    def to_json(self):
        return dict(runs=self.runs, headline=self.headline, failures=self.failures, notes=self.notes)


def fmt(v, unit):
    if v is None:
        return "n/a"
    if unit in ("us",):
        return f"{v:.2f}"
    if unit in ("Gbit/s",):
        return f"{v:.2f}"
    return f"{v:.0f}" if v >= 100 else f"{v:.2f}"


def headline_text(h):
    r = "n/a" if h["ratio"] is None else f"{h['ratio']:.2f}"
    return (f"{h['name']}: keel {fmt(h['keel'], h['unit'])} {h['unit']}, "
            f"kernel {fmt(h['kernel'], h['unit'])} {h['unit']}, ratio {r}")


class Ctx:
    """What every benchmark needs: the lab, the mode's parameters, a logger."""

    def __init__(self, lab, quick, log, verbose):
        self.lab = lab
        self.quick = quick
        self.log = log
        self.verbose = verbose
        q = quick
        self.rr_seconds = 0.5 if q else 5
        self.sweep_seconds = 0.5 if q else 3
        self.sweep_conns = [1, 64, 1024] if q else [1, 16, 64, 256, 1024, 10000]
        self.stream_seconds = 1 if q else 5
        self.crr_seconds = 1 if q else 5
        self.http_seconds = 1 if q else 5
        self.mem_conns = 2000 if q else 10000
        self.shm_seconds = 1 if q else 5

    def echo(self):
        return (lambda s: self.log("      | " + s)) if self.verbose else None


# ----- running one measurement on each side -----

def kernel_run(ctx, res, where, busy, kind, port, service, cargs, seconds, label=None):
    """kbench server (core 1) and one client (core 0) over veth or 127.0.0.1; the parsed summary."""
    return kernel_runs(ctx, res, where, busy, kind, port, service, [(label or kind, cargs)], seconds,
                       slack=60)[0]


def kernel_runs(ctx, res, where, busy, kind, port, service, runs, seconds, slack=90):
    """Several clients against one kbench server: runs = [(label, cargs[, extra args])]; each
    client gets `slack` seconds beyond its run before it counts as hung."""
    lab = ctx.lab
    if where == "veth":
        ns_s, ns_c, addr = lab.ns_server, lab.ns_client, L.VETH_SERVER_IP
    else:
        ns_s, ns_c, addr = lab.ns_lo, lab.ns_lo, "127.0.0.1"
    mode = "busy" if busy else "block"
    srv = lab.kserver(ns_s, service, port, busy, addr)
    out = []
    try:
        for label, cargs, *extra in runs:
            argv = [lab.kbench, kind, addr, str(port)] + cargs + ["--seconds", str(seconds),
                                                                  "--busy" if busy else "--block"]
            rc, lines = lab.run(f"kbench {kind}", ns_c, L.CLIENT_CORE, argv, timeout=seconds + slack,
                                echo=ctx.echo())
            kv, verdict, line = parse_summary(lines, kind)
            ctx.log(f"  kernel {where:4} {mode:5} {label}: {line}")
            args = _args(cargs)
            for e in extra:
                args.update(e)
            out.append(res.add_run("kernel", where, mode, kind, args, kv, verdict, line, lines))
    finally:
        lab.stop(srv)
    return out


def _args(cargs):
    a = {}
    for i in range(0, len(cargs) - 1, 2):
        k = cargs[i].lstrip("-")
        v = cargs[i + 1]
        a[k] = int(v) if v.isdigit() else v
    return a


def keel_run(ctx, res, pair, kind, cmd_args, args, seconds, label=None):
    """`bench KIND ...` on the keel client; the parsed summary."""
    line_cmd = f"bench {kind} {cmd_args}"
    out = pair.client.cmd(line_cmd, timeout=seconds + 90)
    lines = out.splitlines()
    if ctx.verbose:
        for s in lines:
            ctx.log("      | " + s)
    if any(s.startswith("error:") for s in lines):
        raise BenchFailed(f"keel-pmd refused '{line_cmd}':\n{out}")
    kv, verdict, line = parse_summary(lines, kind)
    ctx.log(f"  keel   memif busy  {label or kind}: {line}")
    return res.add_run("keel", "memif", "busy", kind, args, kv, verdict, line, lines)


def keel_pair(ctx):
    pair = ctx.lab.keel_pair(echo=ctx.echo())
    if not pair.has_bench():
        pair.close()
        raise BenchFailed("this keel-pmd has no `bench` command (tools/keel-pmd/bench_commands.cpp)")
    return pair


SRV = L.KEEL_SERVER_IP


# ===== rr: request/response, and the connection-count sweep =====

def bench_rr(ctx):
    res = Result("rr")
    s = ctx.rr_seconds
    cases = [(64, 1), (1024, 1), (64, 64), (1024, 64)]
    with keel_pair(ctx) as pair:
        for size, conns in cases:
            keel_run(ctx, res, pair, "rr", f"{SRV} 7 {size} {conns} {s}", dict(size=size, conns=conns), s,
                     f"rr {size} B x {conns}")
        for conns in ctx.sweep_conns:
            kv = keel_run(ctx, res, pair, "rr", f"{SRV} 7 64 {conns} {ctx.sweep_seconds}",
                          dict(size=64, conns=conns, sweep=True), ctx.sweep_seconds, f"sweep {conns} conns")
    for where in ("veth", "lo"):
        for busy in (True, False):
            kernel_runs(ctx, res, where, busy, "rr", 7, "echo",
                        [(f"rr {size} B x {conns}", ["--size", str(size), "--conns", str(conns)])
                         for size, conns in cases], s)
    sweep_modes = [True] if ctx.quick else [True, False]
    for busy in sweep_modes:
        runs = kernel_runs(ctx, res, "veth", busy, "rr", 7, "echo",
                           [(f"sweep {c} conns", ["--size", "64", "--conns", str(c)], dict(sweep=True))
                            for c in ctx.sweep_conns], ctx.sweep_seconds)
    # Headline: keel against the busy-polling kernel over veth (and the others for reference).
    def get(stack, where, mode, size, conns, key):
        for r in res.runs:
            a = r["args"]
            if (r["stack"], r["where"], r["mode"]) == (stack, where, mode) and a.get("size") == size \
                    and a.get("conns") == conns and not a.get("sweep"):
                return r["summary"].get(key)
        return None
    k = lambda size, conns, key: get("keel", "memif", "busy", size, conns, key)
    kv_ = lambda where, mode, size, conns, key: get("kernel", where, mode, size, conns, key)
    for q, key in (("p999", "p999_us"), ("p99", "p99_us")):
        res.line(f"rr_{q}", k(64, 1, key), kv_("veth", "busy", 64, 1, key), "us", False)
    res.line("rr_1k_p50", k(1024, 1, "p50_us"), kv_("veth", "busy", 1024, 1, "p50_us"), "us", False)
    res.line("rr_1k_p99", k(1024, 1, "p99_us"), kv_("veth", "busy", 1024, 1, "p99_us"), "us", False)
    res.line("rr_p50_lo", k(64, 1, "p50_us"), kv_("lo", "busy", 64, 1, "p50_us"), "us", False,
             "kernel busy-polling over 127.0.0.1")
    res.line("rr_p50_block", k(64, 1, "p50_us"), kv_("veth", "block", 64, 1, "p50_us"), "us", False,
             "kernel blocking (epoll_wait sleeps) over veth")
    res.line("rr_rate_block", k(64, 64, "tps"), kv_("veth", "block", 64, 64, "tps"), "tps", True,
             "kernel blocking over veth")
    res.line("rr_rate_lo", k(64, 64, "tps"), kv_("lo", "busy", 64, 64, "tps"), "tps", True,
             "kernel busy-polling over 127.0.0.1")
    res.line("rr_1k_rate", k(1024, 64, "tps"), kv_("veth", "busy", 1024, 64, "tps"), "tps", True)
    res.line("rr_p50", k(64, 1, "p50_us"), kv_("veth", "busy", 64, 1, "p50_us"), "us", False)
    res.line("rr_rate", k(64, 64, "tps"), kv_("veth", "busy", 64, 64, "tps"), "tps", True)
    return res


# ===== stream: bulk =====

def iperf3(ctx, res, where, streams, seconds):
    lab = ctx.lab
    if where == "veth":
        ns_s, ns_c, addr = lab.ns_server, lab.ns_client, L.VETH_SERVER_IP
    else:
        ns_s, ns_c, addr = lab.ns_lo, lab.ns_lo, "127.0.0.1"
    srv = lab.start("iperf3 -s", ns_s, L.SERVER_CORE, ["iperf3", "-s", "-1", "-B", addr, "-p", "5201"])
    try:
        time.sleep(0.3)
        omit = 0 if ctx.quick else 1
        t = max(1, int(round(seconds)))
        rc, lines = lab.run("iperf3 -c", ns_c, L.CLIENT_CORE,
                            ["iperf3", "-c", addr, "-p", "5201", "-t", str(t), "-O", str(omit), "-P",
                             str(streams), "-J"], timeout=t + 60)
    finally:
        lab.stop(srv)
    try:
        j = json.loads("\n".join(lines))
        end = j["end"]
        gbps = end["sum_received"]["bits_per_second"] / 1e9
        retr = end["sum_sent"].get("retransmits", 0)
    except (ValueError, KeyError) as e:
        raise BenchFailed(f"iperf3 output not understood ({e}):\n" + "\n".join(lines[-15:]))
    kv = dict(conns=streams, seconds=float(t), gbps=gbps, retransmits=float(retr))
    line = f"iperf3 -P {streams} -t {t}: {gbps:.2f} Gbit/s, {retr} retransmits"
    ctx.log(f"  kernel {where:4} iperf3 stream x {streams}: {line}")
    return res.add_run("kernel", where, "iperf3", "stream", dict(conns=streams, tool="iperf3"), kv, "ok", line,
                       [json.dumps(i.get("sum", {})) for i in j.get("intervals", [])])


def bench_stream(ctx):
    res = Result("stream")
    s = ctx.stream_seconds
    keel = {}
    with keel_pair(ctx) as pair:
        for n in (1, 8):
            keel[n] = keel_run(ctx, res, pair, "stream", f"{SRV} 9 {n} {s}", dict(conns=n), s + 30,
                               f"stream x {n}")
    kern = {}
    for where in ("veth", "lo"):
        runs = kernel_runs(ctx, res, where, True, "stream", 9, "discard",
                           [(f"stream x {n}", ["--conns", str(n)]) for n in (1, 8)], s)
        kern[where] = dict(zip((1, 8), runs))
    ip = {n: iperf3(ctx, res, "veth", n, s) for n in (1, 8)}
    ip_lo = iperf3(ctx, res, "lo", 1, s)
    res.line("stream_iperf3", keel[1]["gbps"], ip[1]["gbps"], "Gbit/s", True, "iperf3 -P 1 over veth")
    res.line("stream_iperf3_lo", keel[1]["gbps"], ip_lo["gbps"], "Gbit/s", True, "iperf3 -P 1 over 127.0.0.1")
    res.line("stream_lo", keel[1]["gbps"], kern["lo"][1]["gbps"], "Gbit/s", True, "kbench over 127.0.0.1")
    res.line("stream_8", keel[8]["gbps"], kern["veth"][8]["gbps"], "Gbit/s", True, "8 streams, kbench over veth")
    res.line("stream", keel[1]["gbps"], kern["veth"][1]["gbps"], "Gbit/s", True, "1 stream, kbench over veth")
    return res


# ===== crr: connection rate =====

def bench_crr(ctx):
    res = Result("crr")
    s = ctx.crr_seconds
    with keel_pair(ctx) as pair:
        keel = keel_run(ctx, res, pair, "crr", f"{SRV} 7 64 1 {s}", dict(size=64, conns=1), s, "crr 64 B")
    kb = kernel_run(ctx, res, "veth", True, "crr", 7, "echo", ["--size", "64"], s, "crr 64 B")
    kbl = kernel_run(ctx, res, "veth", False, "crr", 7, "echo", ["--size", "64"], s, "crr 64 B")
    klo = kernel_run(ctx, res, "lo", True, "crr", 7, "echo", ["--size", "64"], s, "crr 64 B")
    res.line("crr_p50", keel["p50_us"], kb["p50_us"], "us", False)
    res.line("crr_block", keel["cps"], kbl["cps"], "conn/s", True, "kernel blocking over veth")
    res.line("crr_lo", keel["cps"], klo["cps"], "conn/s", True, "kernel busy-polling over 127.0.0.1")
    res.line("crr", keel["cps"], kb["cps"], "conn/s", True)
    return res


# ===== mem: bytes per idle established connection =====

SLAB_CACHES = ("TCP", "sock_inode_cache", "filp", "dentry", "eventpoll_epi", "request_sock_TCP")


def slabinfo():
    out = {}
    with open("/proc/slabinfo") as f:
        for line in f:
            p = line.split()
            if p and p[0] in SLAB_CACHES:
                out[p[0]] = (int(p[1]), int(p[3]))  # active objects, object size
    return out


def sockstat_mem_pages(ctx, ns):
    txt = ctx.lab.nsx(ns, "cat", "/proc/net/sockstat")
    m = re.search(r"^TCP: .* mem (\d+)", txt, re.M)
    return int(m.group(1)) if m else 0


def bench_mem(ctx):
    res = Result("mem")
    n = ctx.mem_conns
    lab = ctx.lab
    # keel: the server's own accounting (TCB slot + hash entry + mbufs held) and its RSS.
    with keel_pair(ctx) as pair:
        before = _mem_line(pair.server.cmd("show mem"))
        out = pair.client.cmd(f"bench idle {SRV} 7 {n}", timeout=120)
        if any(s.startswith("error:") for s in out.splitlines()):
            raise BenchFailed(f"keel-pmd refused 'bench idle':\n{out}")
        kv, verdict, line = parse_summary(out.splitlines(), "idle")
        ctx.log(f"  keel   memif busy  idle x {n}: {line}")
        res.add_run("keel", "memif", "busy", "idle", dict(conns=n), kv, verdict, line)
        t0 = time.monotonic()
        while True:  # the server's side of the handshakes lands a moment later
            after = _mem_line(pair.server.cmd("show mem"))
            if after.get("conns", 0) >= n or time.monotonic() - t0 > 10:
                break
            time.sleep(0.2)
        client_mem = _mem_line(pair.client.cmd("show mem"))
        pair.client.cmd("bench idle close", timeout=60)
    ctx.log(f"  keel   server show mem: {after}")
    keel_conns = max(after.get("conns", 0), 1)
    keel_per = after.get("bytes_per_conn")
    keel_rss = (after.get("rss_bytes", 0) - before.get("rss_bytes", 0)) / keel_conns
    res.runs.append(dict(stack="keel", where="memif", mode="busy", kind="mem", args=dict(conns=n),
                         summary=dict(server_before=before, server_after=after, client=client_mem,
                                      bytes_per_conn=keel_per, rss_delta_per_conn=keel_rss),
                         verdict="ok", line=""))
    # kernel: both ends live in this kernel (two sockets per connection): deltas / (2 n).
    srv = lab.kserver(lab.ns_server, "echo", 7, False, L.VETH_SERVER_IP)
    try:
        s0, m0 = slabinfo(), sockstat_mem_pages(ctx, lab.ns_server) + sockstat_mem_pages(ctx, lab.ns_client)
        cli = lab.start("kbench idle", lab.ns_client, L.CLIENT_CORE,
                        [lab.kbench, "idle", L.VETH_SERVER_IP, "7", "--conns", str(n)], stdin=True)
        cli.wait_for(lambda t: "bench idle:" in t, 120)
        time.sleep(0.5)  # the server accepts the last of them
        s1, m1 = slabinfo(), sockstat_mem_pages(ctx, lab.ns_server) + sockstat_mem_pages(ctx, lab.ns_client)
        cli.write("\n")
        lab.finish(cli, 60)
    finally:
        lab.stop(srv)
    kv, verdict, line = parse_summary(cli.lines, "idle")
    ctx.log(f"  kernel veth  block idle x {n}: {line}")
    delta = {k: (s1.get(k, (0, 0))[0] - s0.get(k, (0, 0))[0]) * s1.get(k, s0.get(k, (0, 0)))[1]
             for k in set(s0) | set(s1)}
    socks = 2 * n
    sock_bytes = delta.get("TCP", 0) + delta.get("sock_inode_cache", 0) + (m1 - m0) * 4096
    all_bytes = sum(v for v in delta.values()) + (m1 - m0) * 4096
    kern_per = sock_bytes / socks
    kern_all = all_bytes / socks
    ctx.log(f"  kernel slab deltas (bytes): {delta}, sockstat mem pages {m1 - m0}")
    res.add_run("kernel", "veth", "block", "idle", dict(conns=n), kv, verdict, line)
    res.runs.append(dict(stack="kernel", where="veth", mode="block", kind="mem", args=dict(conns=n),
                         summary=dict(slab_delta_bytes=delta, sockstat_mem_pages=m1 - m0,
                                      socket_bytes_per_conn=kern_per, all_bytes_per_conn=kern_all),
                         verdict="ok", line=""))
    res.notes.append("kernel: per socket = (TCP + sock_inode_cache slab + sockstat TCP mem pages) "
                     "delta / (2 x connections), both ends in one kernel; 'all' adds filp, dentry, "
                     "eventpoll_epi (global caches: other processes add noise)")
    res.line("mem_rss", keel_rss, kern_all, "B/conn", False,
             "keel: server RSS growth per connection; kernel: all socket-related slab per socket")
    res.line("mem", keel_per, kern_per, "B/conn", False,
             "keel: TCB slot + hash entry + mbufs held; kernel: TCP socket + inode slab + socket memory")
    return res


def _mem_line(out):
    for s in out.splitlines():
        if s.startswith("mem: "):
            kv = {}
            for tok in s[5:].split():
                if "=" in tok:
                    k, v = tok.split("=", 1)
                    try:
                        kv[k] = float(v)
                    except ValueError:
                        pass
            return kv
    raise BenchFailed("no 'mem:' line in keel-pmd's `show mem`:\n" + out)


# ===== http: keep-alive, small responses =====

def write_nginx_conf(d, listen, top="", http="", server=""):
    """nginx.conf in d for one worker serving d/html on `listen` (one address or a list),
    keep-alive without limits; `top`, `http` and `server` add directives to those blocks.
    Returns its path."""
    listens = "".join(f"        listen {a};\n" for a in ([listen] if isinstance(listen, str) else listen))
    conf = os.path.join(d, "nginx.conf")
    with open(conf, "w") as f:
        f.write(f"""{top}worker_processes 1;
daemon off;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    keepalive_requests 1000000;
    keepalive_timeout 60s;
{http}    server {{
{listens}{server}        root {d}/html;
        location / {{ index index.html; }}
    }}
}}
""")
    return conf


def bench_http(ctx):
    res = Result("http")
    s = ctx.http_seconds
    lab = ctx.lab
    with keel_pair(ctx) as pair:
        keel = keel_run(ctx, res, pair, "http", f"{SRV} 80 / 64 {s}", dict(conns=64, path="/"), s, "http / x 64")
    # nginx, one worker, core 1, over veth; it serves the same page keel-pmd's http service does.
    d = os.path.join(lab.dir, "nginx")
    os.makedirs(os.path.join(d, "html"), exist_ok=True)
    with open(os.path.join(d, "html", "index.html"), "w") as f:
        f.write(KEEL_PAGE)
    conf = write_nginx_conf(d, f"{L.VETH_SERVER_IP}:80 reuseport")
    ng = lab.start("nginx", lab.ns_server, L.SERVER_CORE, ["nginx", "-c", conf, "-p", d, "-e", os.path.join(d, "error.log")])
    try:
        _wait_port(ctx, lab.ns_client, L.VETH_SERVER_IP, 80)
        t = max(1, int(round(s)))
        rc, lines = lab.run("wrk", lab.ns_client, L.CLIENT_CORE,
                            ["wrk", "-t", "1", "-c", "64", "-d", f"{t}s", "--latency",
                             f"http://{L.VETH_SERVER_IP}/"], timeout=t + 60)
        wrk = _parse_wrk(lines)
        line = (f"wrk -t 1 -c 64 -d {t}s: {wrk['rps']:.1f} req/s, p50 {wrk['p50_us']:.1f} us, "
                f"p99 {wrk['p99_us']:.1f} us, errors {wrk['errors']:.0f}, non-2xx {wrk['non2xx']:.0f}")
        ctx.log(f"  kernel veth  wrk   http / x 64 (nginx, 1 worker): {line}")
        verdict = "ok" if wrk["errors"] == 0 and wrk["non2xx"] == 0 else "FAILED (wrk errors)"
        res.add_run("kernel", "veth", "wrk", "http", dict(conns=64, server="nginx", client="wrk"), wrk, verdict, line,
                    lines)
        # The same client keel uses, against nginx: the harness taken out of the comparison.
        argv = [lab.kbench, "http", L.VETH_SERVER_IP, "80", "--conns", "64", "--seconds", str(s), "--busy"]
        rc, lines = lab.run("kbench http", lab.ns_client, L.CLIENT_CORE, argv, timeout=s + 60, echo=ctx.echo())
        kv, verdict, line = parse_summary(lines, "http")
        ctx.log(f"  kernel veth  busy  http / x 64 (nginx, kbench): {line}")
        kb = res.add_run("kernel", "veth", "busy", "http", dict(conns=64, server="nginx", client="kbench"),
                         kv, verdict, line, lines)
    finally:
        lab.stop(ng)
    # Harness-bound references: wrk (kernel) against keel-pmd over ports the kernel reaches;
    # the kernel side's per-packet system calls set the ceiling: compare them with each other.
    refs = {}
    for kind in ("af_packet", "tap"):
        try:
            refs[kind] = _wrk_against_keel(ctx, res, kind, s)
        except (BenchFailed, L.LabError) as e:
            ctx.log(f"  wrk against keel-pmd over {kind}: did not run: {e}")
    res.line("http_kbench", keel["rps"], kb["rps"], "req/s", True, "kbench (busy) against nginx")
    res.line("http_p99", keel["p99_us"], wrk["p99_us"], "us", False)
    for kind, r in refs.items():
        res.line(f"http_wrk_{kind}", r["rps"], wrk["rps"], "req/s", True,
                 f"harness-bound: wrk against keel-pmd over {kind} vs against nginx over veth")
    res.line("http", keel["rps"], wrk["rps"], "req/s", True, "wrk against nginx, one worker, over veth")
    return res


def _wrk_against_keel(ctx, res, kind, seconds):
    """wrk -t 1 -c 64 (core 0) against keel-pmd's http service (core 1) over `kind`."""
    lab = ctx.lab
    pmd, kns, addr = lab.keel_facing_kernel(kind, echo=ctx.echo())
    try:
        _wait_port(ctx, kns, addr, 80)
        t = max(1, int(round(seconds)))
        rc, lines = lab.run(f"wrk {kind}", kns, L.CLIENT_CORE,
                            ["wrk", "-t", "1", "-c", "64", "-d", f"{t}s", "--latency", f"http://{addr}/"],
                            timeout=t + 60)
        w = _parse_wrk(lines)
    finally:
        pmd.quit()
    line = (f"wrk -t 1 -c 64 -d {t}s: {w['rps']:.1f} req/s, p50 {w['p50_us']:.1f} us, "
            f"p99 {w['p99_us']:.1f} us, errors {w['errors']:.0f}, non-2xx {w['non2xx']:.0f}")
    ctx.log(f"  keel   {kind:<9} wrk   http / x 64 (keel-pmd, harness-bound): {line}")
    verdict = "ok" if w["errors"] == 0 and w["non2xx"] == 0 else "FAILED (wrk errors)"
    res.add_run("keel", kind, "wrk", "http", dict(conns=64, server="keel-pmd", client="wrk"), w, verdict,
                line, lines)
    return w


KEEL_PAGE = ("<!DOCTYPE html>\n"
             "<html><head><meta charset=\"utf-8\"><title>keel-pmd</title></head>\n"
             "<body><h1>keel-pmd</h1>\n"
             "<p>Served by keel, a user-space TCP/IP stack on DPDK.</p>\n"
             "<p><a href=\"/bytes/1024\">/bytes/N</a> returns N bytes, byte i = i mod 251.</p>\n"
             "</body></html>\n")


def _wait_port(ctx, ns, addr, port, timeout=10):
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        r = subprocess.run(["ip", "netns", "exec", ns, "bash", "-c", f"exec 3<>/dev/tcp/{addr}/{port}"],
                           stderr=subprocess.DEVNULL)
        if r.returncode == 0:
            return
        time.sleep(0.1)
    raise BenchFailed(f"nothing listens on {addr}:{port} after {timeout} s")


def _wrk_time_us(s):
    m = re.match(r"([0-9.]+)(us|ms|s|m)$", s)
    if not m:
        raise BenchFailed(f"wrk: cannot read the time {s!r}")
    v = float(m.group(1))
    return v * {"us": 1, "ms": 1e3, "s": 1e6, "m": 60e6}[m.group(2)]


def _parse_wrk(lines):
    txt = "\n".join(lines)
    m = re.search(r"^Requests/sec:\s+([0-9.]+)", txt, re.M)
    p50 = re.search(r"^\s+50%\s+(\S+)", txt, re.M)
    p99 = re.search(r"^\s+99%\s+(\S+)", txt, re.M)
    reqs = re.search(r"^\s+(\d+) requests in", txt, re.M)
    if not (m and p50 and p99 and reqs):
        raise BenchFailed("wrk output not understood:\n" + txt[-1500:])
    err = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", txt)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", txt)
    return dict(rps=float(m.group(1)), requests=float(reqs.group(1)), p50_us=_wrk_time_us(p50.group(1)),
                p99_us=_wrk_time_us(p99.group(1)),
                errors=float(sum(int(x) for x in err.groups())) if err else 0.0,
                non2xx=float(non2xx.group(1)) if non2xx else 0.0)


# ===== cost: instructions per request/response (perf/cost/) =====

def cost_command(ctx):
    """HOOK: the command that prints the `cost: ...` line. perf/cost/run-cost.sh (callgrind,
    instructions per 64 B request/response on the keel server) unless KEEL_PERF_COST_CMD
    names another command (split like a shell would; run from the repository root)."""
    env = os.environ.get("KEEL_PERF_COST_CMD")
    if env:
        return shlex.split(env)
    p = os.path.join(ctx.root, "perf", "cost", "run-cost.sh")
    if not os.access(p, os.X_OK):
        return None
    # perf/run has built everything already (or was told not to build).
    return [p, "--build-dir", ctx.lab.build_dir, "--no-build"] + (["--quick"] if ctx.quick else [])


def bench_cost(ctx):
    res = Result("cost")
    cmd = cost_command(ctx)
    if cmd is None:
        raise BenchFailed("no cost benchmark found (perf/cost/run-cost.sh, or set KEEL_PERF_COST_CMD)")
    ctx.log(f"  running {' '.join(cmd)}")
    env = dict(os.environ, KEEL_BUILD_DIR=ctx.lab.build_dir)
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                       timeout=900, env=env, cwd=ctx.root)
    lines = r.stdout.splitlines()
    for s in lines:
        ctx.log("      | " + s) if ctx.verbose else None
    cost_lines = [s.strip() for s in lines if HEADLINE.match(s.strip()) and s.strip().startswith("cost")]
    if r.returncode != 0 or not cost_lines:
        raise BenchFailed(f"{' '.join(cmd)}: exit {r.returncode}, no well-formed 'cost: ...' line:\n"
                          + "\n".join(lines[-20:]))
    for s in lines[-30:]:
        if not ctx.verbose:
            ctx.log("  cost | " + s)
    for s in cost_lines:
        m = HEADLINE.match(s)
        val = lambda x: None if x == "n/a" else float(x)
        res.headline.append(dict(name=m.group("name"), keel=val(m.group("keel")), kernel=val(m.group("kernel")),
                                 unit=m.group("ku"), ratio=val(m.group("ratio")), higher_is_better=False,
                                 note="from perf/cost", raw=s))
    res.runs.append(dict(stack="keel", where="callgrind", mode="", kind="cost", args={}, summary={},
                         verdict="ok", line="\n".join(lines[-40:])))
    # The cost line itself comes last (the others, if any, before it).
    res.headline.sort(key=lambda h: h["name"] == "cost")
    return res


# ===== shm: the intra-node fast path (issue 5) =====

# echo (rr); SHM_PORT + 1: the checking sink (bulk). Below the lab's ephemeral range
# (1024-65000): after crr over 127.0.0.1, TIME-WAIT client ports there would block the bind.
SHM_PORT = 560
SHM_GROUP_IP = "198.18.74.2"                 # the group's port address (primary and secondary)
SHM_TAP_KERNEL_IP = "198.18.74.1"            # the kernel's end of the tap (channel_tap)


def _shm_conf(path, eal, addr, device, top="", shm=""):
    with open(path, "w") as f:
        f.write(f"eal = {eal}\n{top}[port]\ndevice = {device}\naddress = {addr}/{L.PLEN}\n"
                # Fewer preallocated TCBs than the default 16,384: these processes hold one
                # connection at a time and (in a group) share 64 MB of hugepages.
                "[tcp]\nmax_connections = 1024\n" + shm)
    return path


def _shm_client(ctx, res, name, ns, argv, where, seconds, expect_channel):
    """Runs a shm_bench / kshm client (core 0) for rr then bulk; the two parsed summaries."""
    lab = ctx.lab
    rc, lines = lab.run(name, ns, L.CLIENT_CORE, argv, timeout=2 * seconds + 90, echo=ctx.echo())
    if expect_channel and rc == 3:
        why = [s for s in lines if "FAILED" in s or "connect" in s]
        raise BenchFailed(f"{where}: no channel: " + " | ".join(why[-3:] or lines[-3:]))
    stack = "kernel" if where in ("lo", "unix") else "keel"
    out = {}
    for kind in ("rr", "bulk"):
        kv, verdict, line = parse_summary(lines, kind)
        if expect_channel is not None and int(kv.get("channel", -1)) != int(expect_channel):
            raise BenchFailed(f"{where}: {kind} ran with channel={kv.get('channel')}, expected "
                              f"{int(expect_channel)}: {line}")
        args = dict(size=int(kv.get("size", 0))) if kind == "rr" else dict(chunk=int(kv.get("chunk", 0)))
        ctx.log(f"  {stack:6} {where:11} busy  {kind}: {line}")
        out[kind] = res.add_run(stack, where, "busy", kind, args, kv, verdict, line, lines)
    if rc != 0:
        raise BenchFailed(f"{where}: the client exited with status {rc}:\n" + "\n".join(lines[-10:]))
    return out


def _shm_keel_server(ctx, name, ns, argv):
    p = ctx.lab.start(name, ns, L.SERVER_CORE, argv, echo=ctx.echo())
    p.wait_for(lambda t: "shm_bench server: listening" in t, 60)
    return p


def _shm_case_channel(ctx, res, seconds, shm_bench, port):
    """(a) shm_bench server as the DPDK primary (instance 0 of 2, lcores 0-1 on core 1) and the
    client as a secondary of the same group (instance 1, lcores 2-3 on core 0) over hugepages:
    the client's connect() must give a channel. The group needs a port both share: `null`
    (net_null with no-rx=1: polling it costs nothing, as a NIC's idle queue nearly does) or
    `tap` (net_tap, whose every receive poll is a read() system call)."""
    lab = ctx.lab
    where = "channel" if port == "null" else "channel_tap"
    # -m 64: the group's 64 MB (32 pages) hold both processes' stacks at max_connections
    # 1024 (measured: 32 pages in use while both run); a few more for EAL to grow into.
    if not L.hugetlbfs_mounts() or L.free_hugepages() < 40:
        raise BenchFailed(f"{where}: needs >= 40 free 2 MiB hugepages on a hugetlbfs mount "
                          f"({L.free_hugepages()} free; tools/deps.sh sets them up)")
    ns = lab.tag + ("m" if port == "null" else "n")
    lab._ns_add(ns)
    prefix = f"{lab.tag}-{where}"
    lab.file_prefixes.append(prefix)
    tap = lab.tag + "shm"
    vdev = "net_null0,no-rx=1" if port == "null" else f"net_tap0,iface={tap}"
    device = vdev.split(",")[0]
    mp = "total_instances = 2\n"
    srv_conf = _shm_conf(os.path.join(lab.dir, f"{where}-primary.conf"),
                         f"--lcores 0@{L.SERVER_CORE},1@{L.SERVER_CORE} -m 64 --no-pci --proc-type=primary "
                         f"--file-prefix {prefix} --log-level=pmd:warning --vdev {vdev}",
                         SHM_GROUP_IP, device, "process = primary\n" + mp + "instance_range = 0-0\n")
    cli_conf = _shm_conf(os.path.join(lab.dir, f"{where}-secondary.conf"),
                         f"--lcores 2@{L.CLIENT_CORE},3@{L.CLIENT_CORE} --no-pci --proc-type=secondary "
                         f"--file-prefix {prefix} --log-level=pmd:warning",
                         SHM_GROUP_IP, device, "process = secondary\n" + mp + "instance_range = 1-1\n")
    srv = _shm_keel_server(ctx, f"shm_bench server ({where}, primary)", ns,
                           [shm_bench, "--config", srv_conf, "server", "--port", str(SHM_PORT)])
    try:
        if port == "tap":
            # The kernel's end of the tap: up, with an address and a MAC of its own (nothing is
            # sent over it; a channel never touches the port).
            lab.nsx(ns, "ip", "link", "set", tap, "address", "02:00:00:00:74:01", check=False)
            lab.nsx(ns, "ip", "addr", "add", f"{SHM_TAP_KERNEL_IP}/{L.PLEN}", "dev", tap, check=False)
            lab.nsx(ns, "ip", "link", "set", tap, "up", check=False)
        return _shm_client(ctx, res, f"shm_bench client ({where}, secondary)", ns,
                           [shm_bench, "--config", cli_conf, "client", "rr,bulk", SHM_GROUP_IP, str(SHM_PORT),
                            "--seconds", str(seconds), "--expect", "channel", "--timeout-ms", "5000"],
                           where, seconds, True)
    finally:
        lab.stop(srv)
        # The group is gone: its hugepages go back now, not when the lab closes (a later
        # case may need them).
        shutil.rmtree(f"/var/run/dpdk/{prefix}", ignore_errors=True)
        L.remove_hugepage_files(prefix)


def _shm_case_memif(ctx, res, seconds, shm_bench):
    """(b) the same two programs as two separate DPDK processes (own --file-prefix each, no
    hugepages) joined by net_memif, shm off: keel TCP."""
    lab = ctx.lab
    lab.pairs += 1
    sock = os.path.join(lab.dir, f"shm-memif{lab.pairs}.sock")
    confs = {}
    for role, core, addr in (("server", L.SERVER_CORE, L.KEEL_SERVER_IP), ("client", L.CLIENT_CORE, L.KEEL_CLIENT_IP)):
        prefix = f"{lab.tag}-memif-{role}"
        lab.file_prefixes.append(prefix)
        confs[role] = _shm_conf(os.path.join(lab.dir, f"memif-{role}.conf"),
                                f"-l {core} --no-huge -m 512 --no-pci --file-prefix {prefix} "
                                f"--log-level=pmd:warning --vdev net_memif0,role={role},socket={sock},"
                                "socket-abstract=no", addr, "net_memif0",
                                # TCP even if a channel were possible (they are separate nodes anyway).
                                shm="[shm]\nenabled = off\n")
    srv = _shm_keel_server(ctx, "shm_bench server (memif)", lab.ns_keel,
                           [shm_bench, "--config", confs["server"], "server", "--port", str(SHM_PORT)])
    try:
        return _shm_client(ctx, res, "shm_bench client (memif)", lab.ns_keel,
                           [shm_bench, "--config", confs["client"], "client", "rr,bulk", L.KEEL_SERVER_IP,
                            str(SHM_PORT), "--seconds", str(seconds), "--expect", "tcp"],
                           "memif", seconds, False)
    finally:
        lab.stop(srv)


def _shm_case_kernel(ctx, res, seconds, kshm, where):
    """(c) Linux TCP over 127.0.0.1, (d) a Unix domain socket pair: kshm server (core 1) and
    client (core 0), busy-polling."""
    lab = ctx.lab
    if where == "unix":
        d = os.path.join(lab.dir, "shm-unix")
        os.makedirs(d, exist_ok=True)
        target = ["unix", d]
    else:
        target = ["tcp", "127.0.0.1", str(SHM_PORT)]
    srv = lab.start(f"kshm server {where}", lab.ns_lo, L.SERVER_CORE, [kshm, "server"] + target, echo=ctx.echo())
    try:
        srv.wait_for(lambda t: "kshm server: listening" in t, 10)
        return _shm_client(ctx, res, f"kshm client {where}", lab.ns_lo,
                           [kshm, "client", "rr,bulk"] + target + ["--seconds", str(seconds)], where, seconds, None)
    finally:
        lab.stop(srv)


def bench_shm(ctx):
    res = Result("shm")
    s = ctx.shm_seconds
    lab = ctx.lab
    shm_bench = os.path.join(lab.build_dir, "perf", "shm_bench")
    kshm = os.path.join(lab.build_dir, "perf", "kshm")
    for tool in (shm_bench, kshm):
        if not os.access(tool, os.X_OK):
            raise BenchFailed(f"{tool} missing (build first)")
    # Busy-pollers on a shared machine: how much of each core is there for the taking,
    # before and after (a load that comes and goes in between shows in the tails only).
    def check_share(when):
        share = {c: L.cpu_share(c) for c in (L.CLIENT_CORE, L.SERVER_CORE)}
        txt = ", ".join(f"core {c} {v}" for c, v in share.items())
        ctx.log(f"  cpu share a busy loop gets {when}: {txt}")
        res.notes.append(f"shm: share of each core a busy loop got {when}: {txt}")
        if any(v is not None and v < 0.9 for v in share.values()):
            ctx.log("  WARNING: other work is running on the measured cores: these figures are not the machine's")
            res.notes.append(f"shm: WARNING: other work was running on the measured cores {when} (share < 0.9): "
                             "the figures reflect that load, not the machine")
    check_share("before")
    got, errors = {}, {}
    cases = [("channel", lambda: _shm_case_channel(ctx, res, s, shm_bench, "null")),
             ("memif", lambda: _shm_case_memif(ctx, res, s, shm_bench)),
             ("lo", lambda: _shm_case_kernel(ctx, res, s, kshm, "lo")),
             ("unix", lambda: _shm_case_kernel(ctx, res, s, kshm, "unix"))]
    if not ctx.quick:  # a reference: the same channel in a group whose port is net_tap
        cases.insert(1, ("channel_tap", lambda: _shm_case_channel(ctx, res, s, shm_bench, "tap")))
    for where, run in cases:
        try:
            got[where] = run()
        except (BenchFailed, L.LabError, subprocess.TimeoutExpired) as e:
            errors[where] = str(e)
            ctx.log(f"  {where}: FAILED TO RUN: {e}")
            lab.close_procs()
    # The machine's memcpy bandwidth, on the client's core.
    mem = None
    try:
        rc, lines = lab.run("kshm memcpy", lab.ns_lo, L.CLIENT_CORE, [kshm, "memcpy", "--seconds", str(s)],
                            timeout=s * 3 + 60, echo=ctx.echo())
        kv, verdict, line = parse_summary(lines, "memcpy")
        ctx.log(f"  memcpy core {L.CLIENT_CORE}              {line}")
        mem = res.add_run("memcpy", "memory", "", "memcpy", dict(block=int(kv.get("block", 0))), kv, verdict, line,
                          lines)
    except (BenchFailed, L.LabError) as e:
        errors["memcpy"] = f"memcpy: {e}"
        ctx.log(f"  memcpy: FAILED TO RUN: {e}")

    # The floor of any shared-memory request/response between the two cores: one cache line
    # each way (kshm pingpong: a thread on core 0, one on core 1).
    floor = None
    try:
        cores = f"{L.CLIENT_CORE},{L.SERVER_CORE}"
        rc, lines = lab.run("kshm pingpong", lab.ns_lo, cores, [kshm, "pingpong", "--seconds", str(s)],
                            timeout=s * 2 + 60, echo=ctx.echo())
        kv, verdict, line = parse_summary(lines, "pingpong")
        ctx.log(f"  pingpong cores {cores}          {line}")
        floor = res.add_run("memory", "cores", "busy", "pingpong", {}, kv, verdict, line, lines)
    except (BenchFailed, L.LabError) as e:
        errors["pingpong"] = f"pingpong: {e}"
        ctx.log(f"  pingpong: FAILED TO RUN: {e}")
    check_share("after")

    def fig(where, kind, key):
        v = got.get(where, {}).get(kind)
        return v.get(key) if v else None
    memcpy_gbs = mem.get("gb_per_s") if mem else None
    res.line("shm_rr_p50", fig("channel", "rr", "p50_us"), fig("unix", "rr", "p50_us"), "us", False,
             "64 B RR p50, channel vs Unix domain socket")
    res.line("shm_rr_p99", fig("channel", "rr", "p99_us"), fig("unix", "rr", "p99_us"), "us", False,
             "64 B RR p99, channel vs Unix domain socket")
    res.line("shm_rr_memif", fig("channel", "rr", "tps"), fig("memif", "rr", "tps"), "tps", True,
             "channel vs keel TCP over net_memif (the 'kernel' column is keel TCP)")
    res.line("shm_rr_lo", fig("channel", "rr", "tps"), fig("lo", "rr", "tps"), "tps", True,
             "channel vs Linux TCP over 127.0.0.1")
    res.line("shm_rr_floor", fig("channel", "rr", "tps"), floor.get("tps") if floor else None, "tps", True,
             "channel vs a cache line bounced between the two cores (kshm pingpong: the floor; "
             "the 'kernel' column is that floor)")
    res.line("shm_bulk_memcpy", fig("channel", "bulk", "gb_per_s"), memcpy_gbs, "GB/s", True,
             "channel bulk vs memcpy bandwidth (1 MiB blocks, cache-cold; the 'kernel' column is memcpy)")
    res.line("shm_bulk_memif", fig("channel", "bulk", "gb_per_s"), fig("memif", "bulk", "gb_per_s"), "GB/s", True,
             "channel vs keel TCP over net_memif (the 'kernel' column is keel TCP)")
    res.line("shm_bulk_lo", fig("channel", "bulk", "gb_per_s"), fig("lo", "bulk", "gb_per_s"), "GB/s", True,
             "channel vs Linux TCP over 127.0.0.1")
    res.line("shm_bulk", fig("channel", "bulk", "gb_per_s"), fig("unix", "bulk", "gb_per_s"), "GB/s", True,
             "channel vs Unix domain socket pair")
    res.line("shm_rr", fig("channel", "rr", "tps"), fig("unix", "rr", "tps"), "tps", True,
             "64 B RR, one outstanding: channel vs Unix domain socket pair")
    # Against the targets (report.py's TARGETS has the same two).
    from .report import TARGETS
    heads = {h["name"]: h for h in res.headline}
    for name in ("shm_rr", "shm_bulk_memcpy"):
        h, (want, what) = heads[name], TARGETS[name]
        r = h["ratio"]
        ctx.log(f"  target {name}: {what}: " + ("not measured" if r is None else
                f"ratio {r:.2f} ({'met' if r >= want else 'NOT met'}; wants >= {want:.1f})"))
    if fig("channel", "bulk", "gb_per_s") and memcpy_gbs:
        ctx.log(f"  channel bulk / memcpy = {fig('channel', 'bulk', 'gb_per_s') / memcpy_gbs:.2f} "
                f"(memcpy {memcpy_gbs:.2f} GB/s cache-cold, {mem.get('warm_gb_per_s', 0):.2f} GB/s in cache)")
    res.notes.append("shm: server on core 1, client on core 0, every process busy-polling. channel: shm_bench "
                     "server as DPDK primary (instance 0 of 2) and client as secondary (instance 1) of one group "
                     "over hugepages, sharing a net_null port (no-rx=1); channel_tap (full runs): the same with a "
                     "net_tap port (each poll of it is a read() system call); [shm] defaults (budget 1 MiB, "
                     "1,024 ring slots). memif: the same programs as two separate DPDK processes over net_memif, "
                     "[shm] enabled = off. lo / unix: kshm over Linux TCP on 127.0.0.1 and over an AF_UNIX "
                     "SOCK_STREAM pair (non-blocking, spinning). rr: 64 B, one outstanding. bulk: 64 KiB writes "
                     "(keel: Stack::alloc Buffers filled in place and sent zero-copy; kernel: send() of the "
                     "pattern), the server checks every byte; GB/s = bytes sent after the warm-up / time until the "
                     "server reported it had them all (10^9 bytes/s). memcpy: 1 MiB blocks through source and "
                     "destination buffers of 2x the LLC (cache-cold), core 0. pingpong: two threads (cores 0 and 1) "
                     "bouncing a counter through two cache lines: the round trip no shared-memory channel "
                     "between these cores can beat.")
    if errors:
        res.notes.extend(f"shm: did not run: {v.splitlines()[0][:300]}" for v in errors.values())
        raise BenchFailed("; ".join(v.splitlines()[0][:200] for v in errors.values()), result=res)
    return res


# ===== tls: HTTPS bulk download and small responses =====

def _curl_gbits(ctx, ns, url, label):
    lab = ctx.lab
    rc, lines = lab.run(label, ns, L.CLIENT_CORE, ["curl", "-k", "--tlsv1.3", "-sS", "-o", "/dev/null", "-w",
                                                       "%{speed_download} %{size_download}\\n", url], timeout=300)
    try:
        speed, size = lines[-1].split()
    except (IndexError, ValueError):
        raise BenchFailed(f"{label}: curl output not understood: {lines[-3:]}")
    return float(speed) * 8 / 1e9, int(float(size))


def _bulk(ctx, res, side, kind, ns, url, size, who, note=lambda: ""):
    """One curl download of /bytes/`size` from `url` (its length checked), logged and recorded
    as `side`'s http_bulk or https_bulk over `kind`; its Gbit/s. `note()`, called after the
    download, ends the line."""
    scheme = url.split(":", 1)[0]
    gbit, got = _curl_gbits(ctx, ns, url, f"curl {who} {scheme} {kind}")
    if got != size:
        raise BenchFailed(f"curl {scheme} from {who}: {got} of {size} bytes")
    how = "curl -k --tlsv1.3" if scheme == "https" else "curl http"
    line = f"{how} /bytes/{size}: {gbit:.2f} Gbit/s{note()}"
    ctx.log(f"  {side:<6} {kind:<9} curl  {scheme} bulk ({who}): {line}")
    res.add_run(side, kind, "curl", f"{scheme}_bulk", dict(bytes=size), dict(gbit=gbit), "ok", line)
    return gbit


def _tls_against_keel(ctx, res, kind, d, size, t):
    """curl and wrk (core 0) against keel-pmd's https (core 1) over `kind`."""
    lab = ctx.lab
    pmd, kns, addr = lab.keel_facing_kernel(kind, "http,https", echo=ctx.echo(),
                                            extra=["--cert", os.path.join(d, "cert.pem"),
                                                   "--key", os.path.join(d, "key.pem")])
    try:
        _wait_port(ctx, kns, addr, 443)
        counted = {}

        def passes_note():
            # Payload passes, counted: what the cipher sealed plus what Connection::write copied.
            st = _stats(pmd.cmd("show stats"))
            counted["passes"] = (st.get("tls_sealed_bytes", 0) + st.get("tcp_tx_copied_bytes", 0)) / size
            return f", {counted['passes']:.3f} payload passes"

        gbit = _bulk(ctx, res, "keel", kind, kns, f"https://{addr}/bytes/{size}", size, "keel-pmd", passes_note)
        passes = counted["passes"]
        # The same download in clear over the same port: what the harness allows without TLS.
        plain = _bulk(ctx, res, "keel", kind, kns, f"http://{addr}/bytes/{size}", size, "keel-pmd",
                      lambda: " (no TLS)")
        rc, lines = lab.run(f"wrk keel https {kind}", kns, L.CLIENT_CORE,
                            ["wrk", "-t", "1", "-c", "64", "-d", f"{t}s", "--latency", f"https://{addr}/"],
                            timeout=t + 60)
        w = _parse_wrk(lines)
        line = (f"wrk -t 1 -c 64 -d {t}s https /: {w['rps']:.1f} req/s, p99 {w['p99_us']:.1f} us, "
                f"errors {w['errors']:.0f}")
        ctx.log(f"  keel   {kind:<9} wrk   https / x 64 (keel-pmd): {line}")
        res.add_run("keel", kind, "wrk", "https_small", dict(conns=64), w,
                    "ok" if w["errors"] == 0 and w["non2xx"] == 0 else "FAILED (wrk errors)", line, lines)
    finally:
        pmd.quit()
    return gbit, w, passes, plain


def _stats(out):
    """`show stats` as {counter: value} (zeros are not listed)."""
    st = {}
    for ln in out.splitlines():
        f = ln.split()
        if len(f) >= 2 and f[1].isdigit():
            st[f[0]] = int(f[1])
    return st


def bench_tls(ctx):
    """keel-pmd's https (core 1, net_af_packet facing the kernel) against nginx + OpenSSL
    on the kernel (one worker, core 1, veth); the same kernel clients (curl, wrk) on core 0."""
    res = Result("tls")
    lab = ctx.lab
    s = ctx.http_seconds
    size = (100 if ctx.quick else 1024) << 20
    d = os.path.join(lab.dir, "nginx-tls")
    os.makedirs(os.path.join(d, "html"), exist_ok=True)
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-subj", "/CN=keel-perf", "-days", "1", "-keyout", os.path.join(d, "key.pem"),
                    "-out", os.path.join(d, "cert.pem")], check=True, capture_output=True)
    with open(os.path.join(d, "html", "index.html"), "w") as f:
        f.write(KEEL_PAGE)
    # nginx serves the same bytes as keel's /bytes/N (byte i = i mod 251) from a file.
    os.makedirs(os.path.join(d, "html", "bytes"), exist_ok=True)
    period = bytes(i % 251 for i in range(251 * 4096))
    with open(os.path.join(d, "html", "bytes", str(size)), "wb") as f:
        left = size
        while left > 0:
            f.write(period[:min(left, len(period))])
            left -= min(left, len(period))
    t = max(1, int(round(s)))

    keel = {}
    for kind in ("af_packet", "tap"):
        try:
            keel[kind] = _tls_against_keel(ctx, res, kind, d, size, t)
        except (BenchFailed, L.LabError) as e:
            if kind == "af_packet":
                raise
            ctx.log(f"  keel over {kind}: did not run: {e}")
    keel_gbit, kw, keel_passes, keel_plain = keel["af_packet"]

    # keel at both ends (keel-pmd's tls-get on core 0, its https on core 1, over memif): the
    # stack's own rate, with no kernel port in the path; against curl and nginx over veth.
    pair_gbit = None
    try:
        with ctx.lab.keel_pair(serve="https", echo=ctx.echo(),
                               extra=["--cert", os.path.join(d, "cert.pem"), "--key", os.path.join(d, "key.pem")]) as pair:
            out = pair.client.cmd(f"tls-get {SRV} 443 /bytes/{size} 1.3 discard", 300)
            m = re.search(r"TLSv1.3 \S+, 'HTTP/1.[01] 200 [^']*', (\d+) body bytes.*, ([\d.]+) Gbit/s", out)
            if not m or int(m.group(1)) != size:
                raise BenchFailed(f"tls-get between keel-pmds: {out.strip()[-300:]}")
            pair_gbit = float(m.group(2))
            line = f"tls-get /bytes/{size} 1.3: {pair_gbit:.2f} Gbit/s"
            ctx.log(f"  keel   memif     tls-get https bulk (keel-pmd to keel-pmd): {line}")
            res.add_run("keel", "memif", "tls-get", "https_bulk", dict(bytes=size), dict(gbit=pair_gbit), "ok", line)
    except (BenchFailed, L.LabError) as e:
        ctx.log(f"  keel to keel over memif: did not run: {e}")

    # Port 80 too, in clear (sendfile off there as well: the same read-and-send path).
    conf = write_nginx_conf(d, [f"{L.VETH_SERVER_IP}:443 ssl reuseport", f"{L.VETH_SERVER_IP}:80"],
                            http="    sendfile off;\n",
                            server=(f"        ssl_certificate {d}/cert.pem;\n"
                                    f"        ssl_certificate_key {d}/key.pem;\n"
                                    "        ssl_protocols TLSv1.2 TLSv1.3;\n"
                                    "        ssl_session_tickets on;\n"))
    ng = lab.start("nginx", lab.ns_server, L.SERVER_CORE, ["nginx", "-c", conf, "-p", d, "-e", os.path.join(d, "error.log")])
    try:
        _wait_port(ctx, lab.ns_client, L.VETH_SERVER_IP, 443)
        kern_gbit = _bulk(ctx, res, "kernel", "veth", lab.ns_client, f"https://{L.VETH_SERVER_IP}/bytes/{size}",
                          size, "nginx, 1 worker")
        kern_plain = _bulk(ctx, res, "kernel", "veth", lab.ns_client, f"http://{L.VETH_SERVER_IP}/bytes/{size}",
                           size, "nginx, 1 worker", lambda: " (no TLS)")
        rc, lines = lab.run("wrk nginx https", lab.ns_client, L.CLIENT_CORE,
                            ["wrk", "-t", "1", "-c", "64", "-d", f"{t}s", "--latency", f"https://{L.VETH_SERVER_IP}/"],
                            timeout=t + 60)
        nw = _parse_wrk(lines)
        line = (f"wrk -t 1 -c 64 -d {t}s https /: {nw['rps']:.1f} req/s, p99 {nw['p99_us']:.1f} us, "
                f"errors {nw['errors']:.0f}")
        ctx.log(f"  kernel veth      wrk   https / x 64 (nginx, 1 worker): {line}")
        res.add_run("kernel", "veth", "wrk", "https_small", dict(conns=64), nw,
                    "ok" if nw["errors"] == 0 and nw["non2xx"] == 0 else "FAILED (wrk errors)", line, lines)
    finally:
        lab.stop(ng)
    if "tap" in keel:
        res.line("tls_bulk_tap", keel["tap"][0], kern_gbit, "Gbit/s", True, "keel over net_tap (reference)")
        res.line("tls_small_tap", keel["tap"][1]["rps"], nw["rps"], "req/s", True, "keel over net_tap (reference)")
    if pair_gbit is not None:
        res.line("tls_bulk_keel_pair", pair_gbit, kern_gbit, "Gbit/s", True,
                 "keel at both ends over memif (tls-get to https) vs curl to nginx over veth")
    res.line("tls_bulk", keel_gbit, kern_gbit, "Gbit/s", True,
             "curl -k --tlsv1.3, one download; keel over af_packet vs nginx over veth (the kernel client's "
             "receive side is in both)")
    res.line("tls_small", kw["rps"], nw["rps"], "req/s", True, "wrk -t 1 -c 64 https /, keep-alive")
    # What TLS costs each side: the https download as a share of the same download in clear
    # over the same path (1.0: free). Separates the cipher's cost from the harness's.
    res.line("tls_bulk_plain", keel_plain, kern_plain, "Gbit/s", True,
             "the same download over http (no TLS), same ports: the harness's ceiling")
    res.line("tls_bulk_share", keel_gbit / keel_plain, kern_gbit / kern_plain, "of plain", True,
             "https bulk / http bulk, each side over its own path: how much of the clear-text rate "
             "survives TLS")
    # Payload passes between the application's buffer and the port. keel's is counted over the
    # download (tls_sealed_bytes + tcp_tx_copied_bytes per payload byte; TCP sends and resends the
    # sealed mbufs by reference). The kernel's cannot be counted from here: nginx + OpenSSL
    # without kTLS encrypt into OpenSSL's write buffer, then send() copies that into the skb: 2.
    res.line("tls_passes", keel_passes, 2, "passes", False,
             "times each payload byte is written between the application's buffer and the port: keel "
             "counted (the cipher into the outgoing mbuf, plus any Connection::write copy); nginx+OpenSSL "
             "by its code path, not counted: the cipher into OpenSSL's buffer, then send() into the skb")
    return res


BENCHES = {
    "rr": bench_rr,
    "stream": bench_stream,
    "crr": bench_crr,
    "mem": bench_mem,
    "cost": bench_cost,
    "http": bench_http,
    "shm": bench_shm,
    "tls": bench_tls,
}

# Imported last: preload.py uses this module's Result and helpers.
from .preload import bench_preload  # noqa: E402

BENCHES["preload"] = bench_preload
