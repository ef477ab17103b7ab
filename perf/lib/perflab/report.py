# SPDX-License-Identifier: BSD-3-Clause
"""What perf/run writes: <stem>.json (every run, raw, and the machine), <stem>.md (the
summary against the issue's targets) and PNG plots (matplotlib, Agg backend)."""
import json
import os
import platform
import subprocess

# The targets, as minimum ratios (higher is better for keel).
TARGETS = {
    "rr_p50": (2.0, "64 B RR p50 <= 1/2 of the busy-polling kernel's"),
    "rr_p99": (2.0, "64 B RR p99 <= 1/2 of the busy-polling kernel's"),
    "rr_rate": (3.0, "RR transactions/s with 64 connections >= 3x Linux over veth"),
    "stream": (1.5, "bulk single stream >= 1.5x Linux over veth"),
    "crr": (3.0, "connections/s >= 3x"),
    "mem": (2.0, "bytes per idle established connection <= half of Linux's"),
    # issue 5, the intra-node fast path (perf/run shm)
    "shm_rr": (5.0, "channel 64 B RR round trips/s >= 5x a Unix domain socket pair's"),
    "shm_bulk_memcpy": (0.5, "channel bulk within 2x of memcpy bandwidth (bulk/memcpy >= 0.5)"),
    # issue 6, unmodified programs through the LD_PRELOAD shim (perf/run preload): requests/s
    # >= 2x at pipelining 1 (redis) and for wrk/nginx (one request outstanding a connection),
    # with a lower p99 (ratio kernel/keel >= 1), against 127.0.0.1 and against veth.
    "preload_redis_get_p1_lo": (2.0, "redis GET -P 1 req/s >= 2x the kernel's over 127.0.0.1"),
    "preload_redis_get_p1_p99_lo": (1.0, "redis GET -P 1 p99 below the kernel's over 127.0.0.1"),
    "preload_redis_set_p1_lo": (2.0, "redis SET -P 1 req/s >= 2x the kernel's over 127.0.0.1"),
    "preload_redis_set_p1_p99_lo": (1.0, "redis SET -P 1 p99 below the kernel's over 127.0.0.1"),
    "preload_nginx_lo": (2.0, "wrk/nginx req/s >= 2x the kernel's over 127.0.0.1"),
    "preload_nginx_p99_lo": (1.0, "wrk/nginx p99 below the kernel's over 127.0.0.1"),
    "preload_redis_get_p1_veth": (2.0, "redis GET -P 1 req/s >= 2x the kernel's over veth"),
    "preload_redis_get_p1_p99_veth": (1.0, "redis GET -P 1 p99 below the kernel's over veth"),
    "preload_redis_set_p1_veth": (2.0, "redis SET -P 1 req/s >= 2x the kernel's over veth"),
    "preload_redis_set_p1_p99_veth": (1.0, "redis SET -P 1 p99 below the kernel's over veth"),
    "preload_nginx_veth": (2.0, "wrk/nginx req/s >= 2x the kernel's over veth"),
    "preload_nginx_p99_veth": (1.0, "wrk/nginx p99 below the kernel's over veth"),
}


def machine(root, build_dir):
    cpu = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    def out(*a):
        try:
            return subprocess.run(list(a), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                                  cwd=root).stdout.strip()
        except OSError:
            return ""
    with open("/proc/loadavg") as f:
        load = f.read().split()[:3]
    return dict(cpu=cpu, cores=os.cpu_count(), kernel=platform.release(),
                dpdk=out("pkg-config", "--modversion", "libdpdk"),
                pinning=dict(server_core=1, client_core=0,
                             note="server (keel-pmd -l 1 / kbench / nginx / iperf3 -s) on core 1, "
                                  "clients on core 0"),
                loadavg_at_start=load, hostname=platform.node(),
                compiler=out("c++", "--version").splitlines()[0] if out("c++", "--version") else "",
                build_dir=build_dir)


def write_json(path, doc):
    with open(path, "w") as f:
        json.dump(doc, f, indent=1, sort_keys=False)
        f.write("\n")


def _fmt(v, unit):
    if v is None:
        return "n/a"
    if unit in ("us", "Gbit/s"):
        return f"{v:.2f}"
    return f"{v:,.0f}" if v >= 100 else f"{v:.2f}"


def write_md(path, doc, plots):
    m = doc["machine"]
    L = []
    L.append(f"# keel vs Linux: {doc['date']} ({doc['commit']}{', uncommitted changes' if doc['dirty'] else ''})")
    L.append("")
    L.append(f"{'Quick run (a few seconds per benchmark: figures are indicative only)' if doc['quick'] else 'Full run'}"
             f" of `perf/run {' '.join(doc['names'])}`. Machine: {m['cpu']}, {m['cores']} cores, Linux "
             f"{m['kernel']}, DPDK {m['dpdk']}; server on core 1, client on core 0; load average at start "
             f"{' '.join(m['loadavg_at_start'])}." +
             ("" if not [n for n in doc["names"] if n not in ("shm", "preload")] else
              " keel: two keel-pmd processes over net_memif, busy-polling. "
              "Kernel: kbench (perf/kbench.cpp) between two network namespaces over veth (and over "
              "127.0.0.1), busy-polling (non-blocking sockets, epoll_wait timeout 0) unless marked "
              "blocking; iperf3, wrk and nginx as references.") +
             (" shm (the intra-node fast path): keel channels against keel TCP over memif, Linux TCP over "
              "127.0.0.1, a Unix domain socket pair and memcpy; its cases are described in the Notes."
              if "shm" in doc["names"] else "") +
             (" preload (issue 6): unmodified redis-server/redis-benchmark and nginx/wrk, both ends under "
              "the LD_PRELOAD shim over net_memif, against the same programs on the kernel over 127.0.0.1 "
              "and over veth; see the Notes." if "preload" in doc["names"] else ""))
    L.append("")
    L.append("## Headline (keel against the busy-polling kernel over veth, unless the figure says otherwise)")
    L.append("")
    L.append("| figure | keel | kernel | unit | ratio | target | met |")
    L.append("|---|---:|---:|---|---:|---|---|")
    short = []
    for name, b in doc["benchmarks"].items():
        for h in b.get("headline", []):
            t = TARGETS.get(h["name"])
            r = h["ratio"]
            met = ""
            if t:
                met = "n/a" if r is None else ("yes" if r >= t[0] else "**no**")
                if r is not None and r < t[0]:
                    short.append(f"- `{h['name']}`: ratio {r:.2f}, target {t[0]:.1f} ({t[1]})")
                elif r is None:
                    short.append(f"- `{h['name']}`: not measured")
            note = f" ({h['note']})" if h.get("note") else ""
            L.append(f"| {h['name']}{note} | {_fmt(h['keel'], h['unit'])} | {_fmt(h['kernel'], h['unit'])} | "
                     f"{h['unit']} | {'n/a' if r is None else f'{r:.2f}'} | "
                     f"{('>= %.1f' % t[0]) if t else ''} | {met} |")
        if b.get("error"):
            L.append(f"| {name}: **did not run** ({b['error'].splitlines()[0][:120]}) | | | | | | |")
            short.append(f"- `{name}`: did not run: {b['error'].splitlines()[0][:200]}")
    L.append("")
    L.append("## Where keel falls short")
    L.append("")
    L.extend(short or ["Every target is met."])
    L.append("")
    cost = doc["benchmarks"].get("cost", {})
    prof = [r.get("line", "") for r in cost.get("runs", []) if r.get("kind") == "cost"]
    if prof and prof[0]:
        L.append("Where the time goes (perf/cost: callgrind over the keel server, per 64 B "
                 "request/response; the kernel cannot be profiled this way here):")
        L.append("")
        L.append("```")
        L.extend(s for s in prof[0].splitlines() if s.strip())
        L.append("```")
        L.append("")
    failures = [f for b in doc["benchmarks"].values() for f in b.get("failures", [])]
    if failures:
        L.append("Runs that ended FAILED (figures still recorded):")
        L.append("")
        L.extend(f"- {f}" for f in failures)
        L.append("")
    L.append("## Every run")
    L.append("")
    L.append("| benchmark | stack | path | mode | what | summary |")
    L.append("|---|---|---|---|---|---|")
    for name, b in doc["benchmarks"].items():
        for r in b.get("runs", []):
            if not r.get("line"):
                continue
            what = " ".join(f"{k}={v}" for k, v in r["args"].items())
            L.append(f"| {name} | {r['stack']} | {r['where']} | {r['mode']} | {what} | `{r['line']}` |")
    L.append("")
    notes = [n for b in doc["benchmarks"].values() for n in b.get("notes", [])]
    if notes:
        L.append("## Notes")
        L.append("")
        L.extend(f"- {n}" for n in notes)
        L.append("")
    if plots:
        L.append("## Plots")
        L.append("")
        for p in plots:
            L.append(f"![{os.path.basename(p)}]({os.path.basename(p)})")
        L.append("")
    with open(path, "w") as f:
        f.write("\n".join(L))


def plots(stem, doc):
    """PNG plots next to `stem`; the paths written (none if matplotlib is missing)."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return []
    written = []
    rr = doc["benchmarks"].get("rr")
    if rr and rr.get("runs"):
        series = {}
        for r in rr["runs"]:
            if not r["args"].get("sweep"):
                continue
            label = "keel (memif)" if r["stack"] == "keel" else f"kernel veth {r['mode']}"
            series.setdefault(label, []).append((r["args"]["conns"], r["summary"].get("tps", 0),
                                                 r["summary"].get("p99_us", 0)))
        if series:
            fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4.2))
            for label, pts in sorted(series.items()):
                pts.sort()
                x = [p[0] for p in pts]
                a1.plot(x, [p[1] for p in pts], marker="o", label=label)
                a2.plot(x, [p[2] for p in pts], marker="o", label=label)
            for a, yl in ((a1, "transactions/s"), (a2, "p99 latency (us)")):
                a.set_xscale("log")
                a.set_xlabel("connections (64 B request/response, one outstanding each)")
                a.set_ylabel(yl)
                a.grid(True, which="both", alpha=0.3)
                a.legend()
            a2.set_yscale("log")
            fig.suptitle(f"RR sweep: keel vs Linux ({doc['date']} {doc['commit']}{', quick' if doc['quick'] else ''})")
            fig.tight_layout()
            p = stem + "-sweep.png"
            fig.savefig(p, dpi=110)
            plt.close(fig)
            written.append(p)
        bars = []
        for r in rr["runs"]:
            a = r["args"]
            if a.get("sweep") or a.get("conns") != 1 or a.get("size") != 64:
                continue
            label = "keel memif" if r["stack"] == "keel" else f"kernel {r['where']} {r['mode']}"
            bars.append((label, r["summary"].get("p50_us", 0), r["summary"].get("p99_us", 0),
                         r["summary"].get("p999_us", 0)))
        if bars:
            fig, ax = plt.subplots(figsize=(9, 4.2))
            w = 0.27
            xs = range(len(bars))
            for i, (q, name) in enumerate(((1, "p50"), (2, "p99"), (3, "p99.9"))):
                ax.bar([x + (i - 1) * w for x in xs], [b[q] for b in bars], w, label=name)
            ax.set_xticks(list(xs))
            ax.set_xticklabels([b[0] for b in bars], rotation=15)
            ax.set_yscale("log")
            ax.set_ylabel("round trip (us), log scale")
            ax.set_title("64 B request/response, one connection")
            ax.grid(True, axis="y", which="both", alpha=0.3)
            ax.legend()
            fig.tight_layout()
            p = stem + "-rr-latency.png"
            fig.savefig(p, dpi=110)
            plt.close(fig)
            written.append(p)
    heads = [h for b in doc["benchmarks"].values() for h in b.get("headline", [])
             if h["name"] in TARGETS and h["ratio"] is not None]
    if heads:
        fig, ax = plt.subplots(figsize=(8, 3.8))
        names = [h["name"] for h in heads]
        ax.bar(names, [h["ratio"] for h in heads], color=["tab:green" if h["ratio"] >= TARGETS[h["name"]][0]
                                                          else "tab:red" for h in heads])
        ax.scatter(names, [TARGETS[n][0] for n in names], marker="_", s=900, color="black", label="target")
        ax.axhline(1.0, color="gray", lw=0.8)
        ax.set_ylabel("keel / kernel (higher is better)")
        ax.set_title("Headline ratios against the busy-polling kernel over veth")
        ax.legend()
        fig.tight_layout()
        p = stem + "-ratios.png"
        fig.savefig(p, dpi=110)
        plt.close(fig)
        written.append(p)
    return written
