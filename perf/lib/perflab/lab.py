# SPDX-License-Identifier: BSD-3-Clause
"""The lab perf/run measures in, and the processes it runs there.

Kernel side: two network namespaces joined by a veth pair (client 198.18.70.1, server
198.18.70.2), and a third namespace where client and server meet on 127.0.0.1. keel side:
two keel-pmd processes joined by net_memif (client 198.18.71.1, server 198.18.71.2), in a
namespace of their own (they use no kernel networking; the namespace only fences them).
Server on core 1, client on core 0, always.

Everything made here is undone by Lab.close(), which perf/run calls from `finally` (and
so on Ctrl-C / SIGTERM too): processes are stopped by PID, namespaces deleted (the veth
goes with them), the temporary directory and EAL's runtime directories removed.
"""
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time

SERVER_CORE = 1
CLIENT_CORE = 0
VETH_CLIENT_IP = "198.18.70.1"
VETH_SERVER_IP = "198.18.70.2"
KEEL_CLIENT_IP = "198.18.71.1"
KEEL_SERVER_IP = "198.18.71.2"
# The harness-bound references: keel-pmd serving the kernel (wrk) over a kernel-facing port.
AFP_KERNEL_IP, AFP_KEEL_IP = "198.18.72.1", "198.18.72.2"   # net_af_packet on a veth
TAP_KERNEL_IP, TAP_KEEL_IP = "198.18.73.1", "198.18.73.2"   # net_tap
PLEN = 24


class LabError(Exception):
    """The lab or a process in it did not do what it must: the benchmark failed to run."""


def sh(*args, check=True, capture=True, timeout=60):
    """Runs a command; its stdout (stripped). Raises LabError when it fails and check is set."""
    r = subprocess.run(list(args), stdout=subprocess.PIPE if capture else None,
                       stderr=subprocess.PIPE if capture else None, text=True, timeout=timeout)
    if check and r.returncode != 0:
        raise LabError(f"{' '.join(args)}: exit {r.returncode}: {(r.stderr or '').strip()}")
    return (r.stdout or "").strip()


_SPIN = ("import time\nw0, c0 = time.monotonic(), time.process_time()\n"
         "while time.monotonic() - w0 < {s}: pass\n"
         "print((time.process_time() - c0) / (time.monotonic() - w0))")


def cpu_share(core, seconds=0.3):
    """The share of `core` a busy loop gets for `seconds` (1.0: nothing else wants the core;
    0.5: one other runnable task). A busy-polling benchmark measures this machine only as
    far as it gets its cores: below ~0.9 its figures say more about the other load."""
    try:
        out = sh("taskset", "-c", str(core), "/usr/bin/python3", "-c", _SPIN.format(s=seconds), timeout=10)
        return round(float(out), 3)
    except subprocess.TimeoutExpired:
        return 0.0  # it did not even get to run its 0.3 s within 10 s
    except (LabError, ValueError):
        return None


def hugetlbfs_mounts():
    """The hugetlbfs mount points (from /proc/mounts)."""
    try:
        with open("/proc/mounts") as f:
            return [p[1] for p in (line.split() for line in f) if len(p) > 2 and p[2] == "hugetlbfs"]
    except OSError:
        return []


def free_hugepages():
    """Free 2 MiB hugepages (HugePages_Free of /proc/meminfo), 0 if none."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("HugePages_Free:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def remove_hugepage_files(prefix):
    """EAL leaves its hugepage files (PREFIXmap_N) behind, and a killed process
    certainly does: they keep their pages reserved until removed."""
    for m in hugetlbfs_mounts():
        try:
            names = os.listdir(m)
        except OSError:
            continue
        for n in names:
            if n.startswith(prefix + "map_"):
                try:
                    os.unlink(os.path.join(m, n))
                except OSError:
                    pass


class Proc:
    """A process whose output is collected line by line (and echoed when `echo` is set)."""

    def __init__(self, name, argv, stdin=False, echo=None):
        self.name = name
        self.argv = argv
        self.lines = []
        self.text = ""
        self._lock = threading.Lock()
        self._cv = threading.Condition(self._lock)
        self.echo = echo
        self.p = subprocess.Popen(argv, stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                  bufsize=0, start_new_session=True)
        self.pid = self.p.pid
        self._t = threading.Thread(target=self._read, daemon=True)
        self._t.start()

    def _read(self):
        buf = b""
        while True:
            chunk = self.p.stdout.read1(65536) if hasattr(self.p.stdout, "read1") else self.p.stdout.read(4096)
            if not chunk:
                break
            with self._cv:
                self.text += chunk.decode(errors="replace")
                buf += chunk
                while b"\n" in buf:
                    line, buf = buf.split(b"\n", 1)
                    s = line.decode(errors="replace")
                    self.lines.append(s)
                    if self.echo:
                        self.echo(s)
                self._cv.notify_all()
        with self._cv:
            if buf:
                self.lines.append(buf.decode(errors="replace"))
            self._cv.notify_all()

    def alive(self):
        return self.p.poll() is None

    def wait_for(self, pred, timeout):
        """Waits until pred(text) is true; LabError if the process exits or time runs out."""
        deadline = time.monotonic() + timeout
        with self._cv:
            while not pred(self.text):
                if not self.alive() and not self._t.is_alive():
                    raise LabError(f"{self.name} exited (status {self.p.returncode}); output:\n" +
                                   "\n".join(self.lines[-20:]))
                left = deadline - time.monotonic()
                if left <= 0:
                    raise LabError(f"{self.name}: timed out after {timeout} s; output:\n" +
                                   "\n".join(self.lines[-20:]))
                self._cv.wait(min(left, 0.1))

    def write(self, s):
        self.p.stdin.write(s.encode())
        self.p.stdin.flush()

    def wait(self, timeout):
        try:
            return self.p.wait(timeout)
        except subprocess.TimeoutExpired:
            raise LabError(f"{self.name}: still running after {timeout} s")
        finally:
            self._t.join(1)

    def stop(self, sig=signal.SIGTERM, grace=3.0):
        """Stops the process by PID (its own session: `ip netns exec` children go with it)."""
        if self.alive():
            try:
                os.killpg(self.pid, sig)
            except ProcessLookupError:
                pass
            try:
                self.p.wait(grace)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(self.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.p.wait(5)
        if self.p.stdin:
            try:
                self.p.stdin.close()
            except OSError:
                pass
        self._t.join(1)


class Lab:
    def __init__(self, build_dir, log):
        self.build_dir = build_dir
        self.log = log
        self.tag = f"kp{os.getpid()}"
        self.ns_client = self.tag + "c"
        self.ns_server = self.tag + "s"
        self.ns_lo = self.tag + "l"
        self.ns_keel = self.tag + "k"
        self.veth = (self.tag + "a", self.tag + "b")
        self.dir = tempfile.mkdtemp(prefix="keel-perf-")
        os.chmod(self.dir, 0o755)  # nginx's worker (www-data) reads the page from here
        self.procs = []
        self.namespaces = []
        self.file_prefixes = []
        self.pairs = 0
        self.kbench = os.path.join(build_dir, "perf", "kbench")
        self.keel_pmd = os.path.join(build_dir, "tools", "keel-pmd", "keel-pmd")

    # ----- set-up and tear-down -----
    def _ns_add(self, ns):
        sh("ip", "netns", "add", ns)
        self.namespaces.append(ns)
        self.nsx(ns, "ip", "link", "set", "lo", "up")
        for k in ("net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1",
                  # crr: the client closes first and keeps TIME-WAIT; reuse those ports after 1 s
                  # (as a busy client host is set up) rather than run out of them.
                  "net.ipv4.tcp_tw_reuse=1", "net.ipv4.ip_local_port_range=1024 65000",
                  "net.core.somaxconn=65535", "net.ipv4.tcp_max_syn_backlog=65535"):
            self.nsx(ns, "sysctl", "-q", "-w", k)

    def _ns_del(self, ns):
        sh("ip", "netns", "del", ns)
        self.namespaces.remove(ns)
        # The veth end in the client namespace goes with its peer, a moment later.
        k = self.tag + "x"
        for _ in range(100):
            if subprocess.run(["ip", "netns", "exec", self.ns_client, "ip", "link", "show", k],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode != 0:
                break
            time.sleep(0.02)

    def up(self):
        for ns in (self.ns_client, self.ns_server, self.ns_lo, self.ns_keel):
            self._ns_add(ns)
        a, b = self.veth
        sh("ip", "link", "add", a, "netns", self.ns_client, "type", "veth", "peer", "name", b,
           "netns", self.ns_server)
        self.nsx(self.ns_client, "ip", "addr", "add", f"{VETH_CLIENT_IP}/{PLEN}", "dev", a)
        self.nsx(self.ns_server, "ip", "addr", "add", f"{VETH_SERVER_IP}/{PLEN}", "dev", b)
        self.nsx(self.ns_client, "ip", "link", "set", a, "up")
        self.nsx(self.ns_server, "ip", "link", "set", b, "up")
        # The kernel at its best over veth keeps its offloads (TSO/GSO/GRO, no checksums).
        self.log(f"lab: namespaces {self.ns_client} ({VETH_CLIENT_IP}) <-veth-> {self.ns_server} "
                 f"({VETH_SERVER_IP}), {self.ns_lo} (127.0.0.1), {self.ns_keel} (memif); dir {self.dir}")

    def close_procs(self):
        """Stops whatever this lab still runs (after a benchmark failed half way)."""
        for p in reversed(self.procs):
            try:
                p.stop()
            except Exception as e:
                self.log(f"lab: stopping {p.name} (pid {p.pid}): {e}")
        self.procs.clear()

    def close(self):
        for p in reversed(self.procs):
            try:
                p.stop()
            except Exception as e:  # keep tearing down
                self.log(f"lab: stopping {p.name} (pid {p.pid}): {e}")
        self.procs.clear()
        for ns in reversed(self.namespaces):
            subprocess.run(["ip", "netns", "del", ns], stderr=subprocess.DEVNULL)
        self.namespaces.clear()
        for fp in self.file_prefixes:
            shutil.rmtree(f"/var/run/dpdk/{fp}", ignore_errors=True)
            remove_hugepage_files(fp)
        shutil.rmtree(self.dir, ignore_errors=True)

    # ----- running things -----
    def nsx(self, ns, *args, **kw):
        return sh("ip", "netns", "exec", ns, *args, **kw)

    def start(self, name, ns, core, argv, stdin=False, echo=None):
        p = Proc(name, ["ip", "netns", "exec", ns, "taskset", "-c", str(core)] + list(argv),
                 stdin=stdin, echo=echo)
        self.procs.append(p)
        return p

    def finish(self, p, timeout):
        """Waits for a process started with start(); its status."""
        try:
            return p.wait(timeout)
        finally:
            p.stop()
            if p in self.procs:
                self.procs.remove(p)

    def stop(self, p):
        p.stop()
        if p in self.procs:
            self.procs.remove(p)

    def run(self, name, ns, core, argv, timeout, echo=None):
        """Runs a client to its end: (status, output lines)."""
        p = self.start(name, ns, core, argv, echo=echo)
        rc = self.finish(p, timeout)
        return rc, p.lines

    # ----- kernel side -----
    def kserver(self, ns, mode, port, busy, addr="0.0.0.0"):
        p = self.start(f"kbench server {mode}:{port}", ns, SERVER_CORE,
                       [self.kbench, "server", "--port", str(port), f"--{mode}", "--addr", addr,
                        "--busy" if busy else "--block"])
        p.wait_for(lambda t: "kbench server:" in t, 10)
        return p

    # ----- keel side -----
    def keel_pair(self, serve="echo,discard,http", echo=None, extra=()):
        return KeelPair(self, serve, echo, extra)

    def keel_facing_kernel(self, kind, serve="http", echo=None, extra=()):
        """keel-pmd serving on core 1 over a port the kernel reaches: kind "af_packet" (a
        veth whose kernel end is in the client namespace) or "tap" (net_tap; the kernel
        client then runs in keel's namespace). Returns (KeelPmd, kernel namespace, keel
        address); the veth or tap goes when its namespace is deleted."""
        ns = self.tag + ("p" if kind == "af_packet" else "t")
        if ns in self.namespaces:
            # An earlier benchmark's (http before tls): its port and veth go with it.
            self._ns_del(ns)
        self._ns_add(ns)
        if kind == "af_packet":
            k, d = self.tag + "x", self.tag + "y"
            sh("ip", "link", "add", k, "netns", self.ns_client, "type", "veth", "peer", "name", d, "netns", ns)
            for n, dev in ((self.ns_client, k), (ns, d)):
                # af_packet would see unfinished checksums and GRO-merged frames otherwise.
                self.nsx(n, "ethtool", "-K", dev, "tx", "off", "rx", "off", "tso", "off", "gso", "off",
                         "gro", "off", check=False)
                self.nsx(n, "ip", "link", "set", dev, "up")
            # The kernel end's receive side, which af_packet never sees: GRO (veth NAPI) and
            # trusted checksums, as the kernel's own veth path to nginx has them.
            self.nsx(self.ns_client, "ethtool", "-K", k, "gro", "on", "rx", "on", check=False)
            self.nsx(self.ns_client, "ip", "addr", "add", f"{AFP_KERNEL_IP}/{PLEN}", "dev", k)
            vdev, addr, kns = f"net_af_packet0,iface={d}", AFP_KEEL_IP, self.ns_client
        else:
            tap = self.tag + "tap"
            vdev, addr, kns = f"net_tap0,iface={tap}", TAP_KEEL_IP, ns
        pmd = KeelPmd(self, f"srv-{kind}", SERVER_CORE, None, addr, ["--serve", serve] + list(extra), None, echo,
                      vdev=vdev, ns=ns)
        if kind == "tap":
            # The PMD gave the kernel side the port's MAC: give it another, then the address.
            self.nsx(ns, "ip", "link", "set", tap, "address", "02:00:00:00:73:01")
            self.nsx(ns, "ip", "addr", "add", f"{TAP_KERNEL_IP}/{PLEN}", "dev", tap)
            self.nsx(ns, "ip", "link", "set", tap, "up")
        return pmd, kns, addr


PROMPT = "keel> "


class KeelPmd:
    """keel-pmd -i on a pipe: one command at a time, done at the next prompt."""

    def __init__(self, lab, name, core, role, addr, extra, sock, echo=None, vdev=None, ns=None):
        self.lab = lab
        self.name = name
        prefix = f"{lab.tag}-{name}"
        if prefix not in lab.file_prefixes:
            lab.file_prefixes.append(prefix)
        argv = [lab.keel_pmd, "-l", str(core), "--no-huge", "-m", "512", "--no-pci",
                "--file-prefix", prefix, "--log-level=pmd:warning",
                "--vdev", vdev or f"net_memif0,role={role},socket={sock},socket-abstract=no", "--",
                "--addr", f"{addr}/{PLEN}", "--busy-poll"] + extra + ["-i"]
        self.p = lab.start(f"keel-pmd {name}", ns or lab.ns_keel, core, argv, stdin=True, echo=echo)
        self.p.wait_for(lambda t: t.count(PROMPT) >= 1, 30)

    def cmd(self, line, timeout=60):
        """Runs one command; its output (without the prompt)."""
        before = self.p.text.count(PROMPT)
        off = len(self.p.text)
        self.p.write(line + "\n")
        self.p.wait_for(lambda t: t.count(PROMPT) > before, timeout)
        out = self.p.text[off:]
        return out[: out.rfind(PROMPT)].strip("\n")

    def pid(self):
        """The keel-pmd process itself (under ip netns exec / taskset, which exec)."""
        return self.p.pid

    def quit(self):
        try:
            self.p.write("quit\n")
            rc = self.p.wait(20)
            if rc != 0:
                self.lab.log(f"lab: keel-pmd {self.name} exited with status {rc}: " + " | ".join(self.p.lines[-3:]))
        except (LabError, OSError, BrokenPipeError):
            self.lab.log(f"lab: keel-pmd {self.name} did not quit within 20 s: stopping it")
        self.lab.stop(self.p)


class KeelPair:
    """A keel-pmd server (core 1, serving echo:7 discard:9 http:80) and a client (core 0)
    joined by net_memif. Both busy-poll: stop them before measuring anything else."""

    def __init__(self, lab, serve, echo, extra=()):
        # A socket of the pair's own: one a killed server left behind would be "in use".
        lab.pairs += 1
        sock = os.path.join(lab.dir, f"memif{lab.pairs}.sock")
        self.server = KeelPmd(lab, "srv", SERVER_CORE, "server", KEEL_SERVER_IP, ["--serve", serve] + list(extra),
                              sock, echo)
        try:
            self.client = KeelPmd(lab, "cli", CLIENT_CORE, "client", KEEL_CLIENT_IP, [], sock, echo)
        except Exception:
            self.server.quit()
            raise
        out = self.client.cmd(f"ping {KEEL_SERVER_IP} 3 10", 30)
        if not re.search(r"3 packets transmitted, [1-3] received", out):
            self.close()
            raise LabError(f"keel client cannot reach the keel server over memif:\n{out}")

    def has_bench(self):
        return "bench rr" in self.client.cmd("help")

    def close(self):
        self.client.quit()
        self.server.quit()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
