# SPDX-License-Identifier: BSD-3-Clause
"""perf/run preload: unmodified redis and nginx on keel through the LD_PRELOAD shim
(src/preload, libkeel_preload.so) against the same programs on the kernel (issue 6).

Three placements in one run, the server on core 1 and the client on core 0 in each:
  memif  both ends under the shim, each its own DPDK primary (--no-huge, own --file-prefix),
         joined by net_memif (server role=server, client role=client; socket in the lab's
         directory): no kernel on the data path;
  lo     both on the kernel in the lab's 127.0.0.1 namespace;
  veth   server and client in the lab's two namespaces, over its veth pair.
Measured: redis-benchmark -t set,get -c 50 -P 1 and -P 16 against redis-server, and wrk
-t 1 -c 50 --latency against nginx (master_process off, one worker, a small static page).
"""
import os
import re
import statistics
import time

from . import lab as L
from .benches import BenchFailed, KEEL_PAGE, Result, _parse_wrk, write_nginx_conf

# Below 1024: the lab's namespaces make 1024-65000 ephemeral, and sockets an earlier
# benchmark's clients left behind (crr over 127.0.0.1) may hold any port in it.
REDIS_PORT = 637
HTTP_PORT = 808
CONNS = 50
PIPELINES = (1, 16)
TESTS = ("set", "get")

# Under the shim the process opens keel's port (memif, DPDK's memory): root's rights.
NGINX_TOP = "master_process off;\nuser root;\n"


class Params:
    def __init__(self, quick):
        self.quick = quick
        # quick: one round, fixed request counts (~0.2-1 s a test). full: three rounds of
        # every placement, ~3.5 s a test each (its -n from a warm-up run's rate), the
        # headline the median: other load on this shared machine comes and goes in
        # seconds, and rounds spread it over all placements instead of one.
        self.rounds = 1 if quick else 3
        self.redis_n = {1: 20000, 16: 100000}
        self.seconds = 3.5
        self.wrk_seconds = 2 if quick else 4


class Placement:
    """Where the server and the client run, and how they are started there."""

    def __init__(self, ctx, where):
        lab = ctx.lab
        self.where = where
        self.lab = lab
        self.shim = where == "memif"
        if where == "memif":
            self.ns_s, self.ns_c, self.addr = lab.ns_keel, lab.ns_keel, L.KEEL_SERVER_IP
            self.lib = os.path.join(lab.build_dir, "src", "preload", "libkeel_preload.so")
            lab.pairs += 1
            # A socket of the server's own: one a killed server left behind would be "in use".
            self.sock = os.path.join(lab.dir, f"preload-memif{lab.pairs}.sock")
        elif where == "veth":
            self.ns_s, self.ns_c, self.addr = lab.ns_server, lab.ns_client, L.VETH_SERVER_IP
        else:
            self.ns_s, self.ns_c, self.addr = lab.ns_lo, lab.ns_lo, "127.0.0.1"

    def _env(self, role, core, addr):
        prefix = f"{self.lab.tag}-preload-{role}"
        if prefix not in self.lab.file_prefixes:
            self.lab.file_prefixes.append(prefix)
        eal = (f"-l {core} --no-huge -m 512 --no-pci --file-prefix {prefix} --log-level=lib.eal:warning "
               f"--log-level=pmd:error --vdev net_memif0,role={role},socket={self.sock},socket-abstract=no")
        return ["env", f"LD_PRELOAD={self.lib}", f"KEEL_ADDR={addr}/{L.PLEN}", f"KEEL_EAL={eal}"]

    def server(self, name, argv, echo=None):
        pre = self._env("server", L.SERVER_CORE, L.KEEL_SERVER_IP) if self.shim else []
        return self.lab.start(f"{name} ({self.where})", self.ns_s, L.SERVER_CORE, pre + argv, echo=echo)

    def client(self, name, argv, timeout, echo=None):
        """Runs a client to its end: (status, output lines)."""
        pre = self._env("client", L.CLIENT_CORE, L.KEEL_CLIENT_IP) if self.shim else []
        return self.lab.run(f"{name} ({self.where})", self.ns_c, L.CLIENT_CORE, pre + argv, timeout, echo=echo)


# ----- redis -----

CSV_ROW = re.compile(r'^"(?P<test>[A-Z_]+)","(?P<rps>[0-9.]+)","(?P<avg>[0-9.]+)","(?P<min>[0-9.]+)",'
                     r'"(?P<p50>[0-9.]+)","(?P<p95>[0-9.]+)","(?P<p99>[0-9.]+)","(?P<max>[0-9.]+)"$', re.M)


def _parse_redis_csv(lines):
    """redis-benchmark --csv (7.x): one row per test, latencies in ms; {test: figures in us}."""
    txt = "\n".join(lines).replace("\r", "\n")
    out = {}
    for m in CSV_ROW.finditer(txt):
        out[m.group("test").lower()] = dict(rps=float(m.group("rps")), avg_us=float(m.group("avg")) * 1e3,
                                            p50_us=float(m.group("p50")) * 1e3, p95_us=float(m.group("p95")) * 1e3,
                                            p99_us=float(m.group("p99")) * 1e3, max_us=float(m.group("max")) * 1e3)
    return out


def _redis_bench(ctx, pl, pipeline, n, timeout):
    argv = ["redis-benchmark", "-h", pl.addr, "-p", str(REDIS_PORT), "-t", ",".join(TESTS), "-c", str(CONNS),
            "-n", str(n), "-P", str(pipeline), "--csv"]
    rc, lines = pl.client("redis-benchmark", argv, timeout, echo=ctx.echo())
    return rc, lines, _parse_redis_csv(lines)


def _redis_warm(ctx, pl, pipeline):
    """Until a short run completes (the server, and under the shim the memif link, may still
    be coming up): its rates. BenchFailed after 30 s."""
    deadline = time.monotonic() + 30
    n = 2000 * pipeline
    while True:
        rc, lines, got = _redis_bench(ctx, pl, pipeline, n, 30)
        if rc == 0 and all(t in got for t in TESTS):
            return got
        if time.monotonic() > deadline:
            raise BenchFailed(f"redis-benchmark ({pl.where}) does not complete a warm-up run (status {rc}):\n"
                              + "\n".join(lines[-10:]))
        time.sleep(0.5)


def _redis(ctx, res, pl, prm, rnd):
    lab = ctx.lab
    srv = pl.server("redis-server", ["redis-server", "--bind", pl.addr, "--port", str(REDIS_PORT), "--save", "",
                                     "--appendonly", "no", "--protected-mode", "no", "--daemonize", "no"],
                    echo=ctx.echo())
    out = {}
    try:
        srv.wait_for(lambda t: "Ready to accept connections" in t, 30)
        for p in PIPELINES:
            warm = _redis_warm(ctx, pl, p)
            if prm.quick:
                n = prm.redis_n[p]
            else:
                rate = sum(warm[t]["rps"] for t in TESTS) / len(TESTS)
                n = max(prm.redis_n[p], int(rate * prm.seconds / 1000) * 1000)
            # Room for a rate a tenth of the warm-up's (a loaded machine) before it counts as hung.
            rc, lines, got = _redis_bench(ctx, pl, p, n, len(TESTS) * 10 * prm.seconds + 60)
            for t in TESTS:
                if t not in got:
                    raise BenchFailed(f"redis-benchmark ({pl.where}, -P {p}) printed no {t.upper()} result "
                                      f"(status {rc}):\n" + "\n".join(lines[-10:]))
                kv = got[t]
                errs = [s for s in lines if re.search(r"error|refused|reset", s, re.I)]
                verdict = "ok" if rc == 0 and not errs else f"FAILED (status {rc}{'; ' + errs[0][:80] if errs else ''})"
                line = (f"redis-benchmark -t {t} -c {CONNS} -n {n} -P {p}: {kv['rps']:.0f} req/s, "
                        f"p50 {kv['p50_us']:.0f} us, p99 {kv['p99_us']:.0f} us, max {kv['max_us']:.0f} us")
                ctx.log(f"  {'keel' if pl.shim else 'kernel':6} {pl.where:5} {'shim' if pl.shim else 'block':5} "
                        f"redis {t} P{p:<2} #{rnd + 1}: {line}")
                out[(t, p)] = res.add_run("keel" if pl.shim else "kernel", pl.where, "shim" if pl.shim else "block",
                                          "redis", dict(test=t, pipeline=p, conns=CONNS, n=n, round=rnd + 1), kv, verdict, line, lines)
    finally:
        lab.stop(srv)
    return out


# ----- nginx + wrk -----

def _tail(path, n=5):
    try:
        with open(path) as f:
            return "\nerror.log:\n" + "".join(f.readlines()[-n:])
    except OSError:
        return ""


def _nginx(ctx, res, pl, prm, rnd):
    lab = ctx.lab
    d = os.path.join(lab.dir, f"preload-nginx-{pl.where}")
    os.makedirs(os.path.join(d, "html"), exist_ok=True)
    with open(os.path.join(d, "html", "index.html"), "w") as f:
        f.write(KEEL_PAGE)
    conf = write_nginx_conf(d, f"{pl.addr}:{HTTP_PORT}", top=NGINX_TOP)
    srv = pl.server("nginx", ["nginx", "-c", conf, "-p", d, "-e", os.path.join(d, "error.log")], echo=ctx.echo())
    url = f"http://{pl.addr}:{HTTP_PORT}/"
    try:
        # Warm-up and readiness: a 1 s run that gets answers.
        deadline = time.monotonic() + 30
        while True:
            rc, lines = pl.client("wrk", ["wrk", "-t", "1", "-c", str(CONNS), "-d", "1s", url], 60)
            m = re.search(r"^\s+(\d+) requests in", "\n".join(lines), re.M)
            if rc == 0 and m and int(m.group(1)) > 0:
                break
            if not srv.alive() or time.monotonic() > deadline:
                raise BenchFailed(f"wrk ({pl.where}) gets no answer from nginx (status {rc}; nginx "
                                  f"{'running' if srv.alive() else 'exited'}):\n" + "\n".join(lines[-5:])
                                  + "\nnginx:\n" + "\n".join(srv.lines[-5:]) + _tail(os.path.join(d, "error.log")))
            time.sleep(0.5)
        t = prm.wrk_seconds
        rc, lines = pl.client("wrk", ["wrk", "-t", "1", "-c", str(CONNS), "-d", f"{t}s", "--latency", url],
                              t + 60, echo=ctx.echo())
        w = _parse_wrk(lines)
    finally:
        lab.stop(srv)
    line = (f"wrk -t 1 -c {CONNS} -d {t}s: {w['rps']:.0f} req/s, p50 {w['p50_us']:.0f} us, "
            f"p99 {w['p99_us']:.0f} us, errors {w['errors']:.0f}, non-2xx {w['non2xx']:.0f}")
    ctx.log(f"  {'keel' if pl.shim else 'kernel':6} {pl.where:5} {'shim' if pl.shim else 'block':5} nginx/wrk     #{rnd + 1}: {line}")
    verdict = "ok" if rc == 0 and w["errors"] == 0 and w["non2xx"] == 0 else "FAILED (wrk errors)"
    return res.add_run("keel" if pl.shim else "kernel", pl.where, "shim" if pl.shim else "block", "http",
                       dict(conns=CONNS, server="nginx", client="wrk", round=rnd + 1), w, verdict, line, lines)


def bench_preload(ctx):
    res = Result("preload")
    prm = Params(ctx.quick)
    lib = os.path.join(ctx.lab.build_dir, "src", "preload", "libkeel_preload.so")
    if not os.path.exists(lib):
        raise BenchFailed(f"{lib} missing (build first)")
    for tool in ("redis-server", "redis-benchmark", "nginx", "wrk"):
        if not any(os.access(os.path.join(p, tool), os.X_OK)
                   for p in os.environ.get("PATH", "").split(":") + ["/usr/sbin", "/usr/bin"]):
            raise BenchFailed(f"{tool} missing (tools/deps.sh installs it)")
    # Blocking programs on a shared 2-core machine: how much of each core is free, before
    # and after (other load shows as multi-ms tails in every placement).
    def check_share(when):
        share = {c: L.cpu_share(c) for c in (L.CLIENT_CORE, L.SERVER_CORE)}
        txt = ", ".join(f"core {c} {v}" for c, v in share.items())
        ctx.log(f"  cpu share a busy loop gets {when}: {txt}")
        res.notes.append(f"preload: share of each core a busy loop got {when}: {txt}")
    check_share("before")
    redis, http, errors = {}, {}, []  # where -> one result per round
    for rnd in range(prm.rounds):
        for where in ("memif", "lo", "veth"):
            for what, run, into in (("redis", _redis, redis), ("nginx", _nginx, http)):
                try:
                    into.setdefault(where, []).append(run(ctx, res, Placement(ctx, where), prm, rnd))
                except (BenchFailed, L.LabError) as e:
                    errors.append(f"{what} {where} round {rnd + 1}: {str(e).splitlines()[0][:200]}")
                    ctx.log(f"  {what} {where}: FAILED TO RUN: {e}")
                    ctx.lab.close_procs()

    check_share("after")

    def fig(src, where, key, sub=None):
        """The median over the rounds that measured it."""
        vals = [r.get(sub, {}) if sub is not None else r for r in src.get(where, [])]
        vals = [v[key] for v in vals if v and key in v]
        return statistics.median(vals) if vals else None
    # Headlines: keel against 127.0.0.1 and against veth, requests/s and p99 of each.
    for kern in ("lo", "veth"):
        via = "127.0.0.1" if kern == "lo" else "veth"
        for p in PIPELINES:
            for t in TESTS:
                k = (t, p)
                res.line(f"preload_redis_{t}_p{p}_p99_{kern}", fig(redis, "memif", "p99_us", k),
                         fig(redis, kern, "p99_us", k), "us", False,
                         f"redis-benchmark -t {t} -c {CONNS} -P {p} p99, kernel over {via}")
                res.line(f"preload_redis_{t}_p{p}_{kern}", fig(redis, "memif", "rps", k), fig(redis, kern, "rps", k),
                         "req/s", True, f"redis-benchmark -t {t} -c {CONNS} -P {p}, kernel over {via}")
        res.line(f"preload_nginx_p99_{kern}", fig(http, "memif", "p99_us"), fig(http, kern, "p99_us"), "us", False,
                 f"wrk -t 1 -c {CONNS} p99 against nginx, kernel over {via}")
        res.line(f"preload_nginx_{kern}", fig(http, "memif", "rps"), fig(http, kern, "rps"), "req/s", True,
                 f"wrk -t 1 -c {CONNS} against nginx (master_process off), kernel over {via}")
    from .report import TARGETS
    for h in res.headline:
        want = TARGETS.get(h["name"])
        if want and h["ratio"] is not None and h["ratio"] < want[0]:
            ctx.log(f"  target {h['name']}: ratio {h['ratio']:.2f}, NOT met (wants >= {want[0]:.1f})")
    res.notes.append(
        "preload: unmodified redis-server 7 / redis-benchmark and nginx / wrk from Debian. keel (memif): "
        "both programs under libkeel_preload.so (LD_PRELOAD; KEEL_EAL '-l CORE --no-huge -m 512 --no-pci "
        "--vdev net_memif0,role=server|client,...'), each its own DPDK primary, joined by net_memif; the "
        "shim spins 1 ms in a wait before sleeping, and its progress thread shares the program's core. "
        "kernel: the same programs over 127.0.0.1 (one namespace) and over veth (two), blocking in "
        "epoll_wait as they do. Server (taskset -c 1, EAL -l 1) on core 1, client on core 0, everywhere. "
        f"redis-benchmark -t set,get -c {CONNS} -P 1 and -P 16 --csv (latencies from its histogram); "
        + ("quick: one round, fixed -n; " if ctx.quick else
           f"{prm.rounds} rounds of all three placements, -n from a warm-up run's rate (~{prm.seconds} s a "
           "test), headline = the median over the rounds (requests/s and p99 each); ")
        + f"wrk -t 1 -c {CONNS} -d {prm.wrk_seconds}s --latency against nginx (master_process off, 1 worker, "
        "access_log off, a 0.3 KB page), after a 1 s warm-up run.")
    if errors:
        res.notes.extend(f"preload: did not run: {e}" for e in errors)
        raise BenchFailed("; ".join(errors), result=res)
    return res
