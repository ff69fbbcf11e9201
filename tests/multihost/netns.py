"""Several machines on one Linux box: network namespaces as hosts, bridges as LANs, a router
between the LANs where faults are injected. Root only; nothing here knows Flamenco.

    net = Network(base_dir)                       # a router namespace, nothing else yet
    net.add_segment("office", "10.77.0")          # a LAN: a bridge in the router, 10.77.0.1/24 on it
    server = net.add_host("flamenco-server", "office", "10.77.0.10")
    net.start()                                   # every host's /etc/hosts names every host
    proc = server.spawn(["flamenco-server", "serve", ...], log="server")   # runs "on" that host
    server.run(["flamenco-server", "create-project", ...])                 # ... to completion
    session = workstation.session()               # requests made from a host (its namespace)
    net.impair("render", delay_ms=200, loss=0.05) # every packet between a LAN and the others, each way
    net.cut(manager, server)                      # drop everything between two hosts on different LANs
    net.heal(); net.clear_impairment()
    net.reset_traffic(); net.traffic()            # bytes from LAN to LAN: {("render", "managers"): n, ...}
    server.kill_all()                             # SIGKILL every process on the host (a crash)
    net.close()                                   # processes, namespaces, links: all gone

A host is a network namespace (`ip netns add`) with one veth pair to its LAN's bridge, a UTS
namespace (its own host name), a private mount namespace where `/etc/hosts` is the host's own
file (so `http://flamenco-server:8080` resolves as it would in a studio), and a directory of
its own (`host.root`: data, `tmp/` as TMPDIR, `home/` as HOME). Processes are started through
`hostexec.py`, which does what `ip netns exec` does plus the host name and hosts file.

Faults, on the router (every packet between two LANs is forwarded by it; traffic within a LAN
is bridged and left alone):
* cut: iptables DROP between two addresses, both ways or one way (chain FM-CUT). Packets
  vanish like on a pulled cable behind a switch: connections hang until their timeouts.
* latency and loss: `tc qdisc ... netem` when the kernel has it, on both ends of every link of
  the LAN. Where netem is missing (this project's CI VMs have no sch_netem), latency comes
  from `tun_delay.py`: policy routing sends every forwarded packet to or from the LAN into a
  TUN device, the process reads each one and writes it back after the delay (fixed delay, so
  order is kept), and the kernel forwards it on. Loss is iptables' `statistic` match (chain
  FM-IMPAIR), once per packet. `tests/multihost/test_network.py` measures both.

Names are `fm<pid><4 hex>-<host>`, so runs never collide and a crashed run's leftovers are
recognised (its pid is gone) and removed by the next `Network` (`sweep_stale`).
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import logging
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests
from requests.adapters import HTTPAdapter

log = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
HOSTEXEC = HERE / "hostexec.py"
TUN_DELAY = HERE / "tun_delay.py"
PREFIX = "fm"
NETNS_DIR = Path("/run/netns")
CLONE_NEWNET = 0x40000000
_NAME = re.compile(rf"^{PREFIX}(\d+)[0-9a-f]{{4}}-")
_libc = ctypes.CDLL(None, use_errno=True)


class NetnsError(Exception):
    pass


def sh(*argv: str, check: bool = True, timeout: float = 30) -> subprocess.CompletedProcess:
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise NetnsError(f"{' '.join(argv)}: exit {proc.returncode}: {proc.stderr.strip() or proc.stdout.strip()}")
    return proc


def iptables_command(ns: str) -> str | None:
    """`iptables`, or `iptables-legacy` where the default one does not work in a namespace."""
    for exe in ("iptables", "iptables-legacy"):
        if shutil.which(exe) and sh("ip", "netns", "exec", ns, exe, "-t", "mangle", "-L", "-n",
                                    check=False).returncode == 0:
            return exe
    return None


def unavailable() -> str | None:
    """Why hosts cannot be made here, or None when they can."""
    if os.geteuid() != 0:
        return "needs root; CI runs as root"
    if not shutil.which("ip"):
        return "no 'ip' command: install iproute2 (scripts/bootstrap does, as root)"
    probe = f"{PREFIX}{os.getpid()}{secrets.token_hex(2)}-probe"
    made = sh("ip", "netns", "add", probe, check=False)
    if made.returncode != 0:
        return f"cannot create a network namespace: {made.stderr.strip()}"
    try:
        for argv in (("ip", "-n", probe, "link", "add", "br-probe", "type", "bridge"),
                     ("ip", "-n", probe, "link", "add", "v-probe", "type", "veth", "peer", "name", "v-probe2")):
            proc = sh(*argv, check=False)
            if proc.returncode != 0:
                return f"'{' '.join(argv)}' fails: {proc.stderr.strip()}"
        if not iptables_command(probe):
            return "no working 'iptables' command: install iptables (scripts/bootstrap does, as root)"
        if not _netem_works(probe) and not os.path.exists("/dev/net/tun"):
            return "neither tc netem nor /dev/net/tun (for the userspace delay) is available"
    finally:
        sh("ip", "netns", "del", probe, check=False)
    return None


def _netem_works(ns: str) -> bool:
    """Whether this kernel has sch_netem (tried on the namespace's loopback)."""
    if not shutil.which("tc"):
        return False
    added = sh("ip", "netns", "exec", ns, "tc", "qdisc", "add", "dev", "lo", "root", "netem", "delay", "1ms",
               check=False).returncode == 0
    if added:
        sh("ip", "netns", "exec", ns, "tc", "qdisc", "del", "dev", "lo", "root", check=False)
    return added


def _setns(fd: int) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"setns: {os.strerror(err)}")


@contextlib.contextmanager
def entered(ns_path: Path):
    """Run this thread's next socket calls in another network namespace (only this thread;
    sockets made meanwhile stay in that namespace after it returns)."""
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    target = os.open(str(ns_path), os.O_RDONLY)
    try:
        _setns(target)
        try:
            yield
        finally:
            _setns(own)
    finally:
        os.close(target)
        os.close(own)


class _HostAdapter(HTTPAdapter):
    """Opens its connections from a host's namespace."""

    def __init__(self, ns_path: Path, **kw):
        self.ns_path = ns_path
        super().__init__(**kw)

    def send(self, *args, **kw):
        with entered(self.ns_path):
            return super().send(*args, **kw)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def namespace_pids(ns: str) -> list[int]:
    out = sh("ip", "netns", "pids", ns, check=False).stdout
    return [int(p) for p in out.split() if p.isdigit()]


def kill_namespace(ns: str, sig: int = signal.SIGKILL) -> list[int]:
    pids = namespace_pids(ns)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
    return pids


def remove_namespace(ns: str) -> None:
    """Kill what runs in it, then delete it (its veth ends and bridges go with it)."""
    deadline = time.monotonic() + 10
    while kill_namespace(ns) and time.monotonic() < deadline:
        time.sleep(0.05)
    sh("ip", "netns", "del", ns, check=False)


def sweep_stale() -> list[str]:
    """Remove the namespaces of earlier runs whose process is gone (a crashed or killed run)."""
    removed = []
    if not NETNS_DIR.is_dir():
        return removed
    for entry in sorted(NETNS_DIR.iterdir()):
        m = _NAME.match(entry.name)
        if m and not _pid_alive(int(m.group(1))):
            remove_namespace(entry.name)
            removed.append(entry.name)
    if removed:
        log.warning("removed %d namespaces left by earlier runs: %s", len(removed), " ".join(removed))
    return removed


@dataclass
class Segment:
    """A LAN: a bridge in the router namespace; the router is `<prefix>.1`."""
    name: str
    prefix: str  # "10.77.1": a /24

    @property
    def bridge(self) -> str:
        return f"br-{self.name}"[:15]

    @property
    def subnet(self) -> str:
        return f"{self.prefix}.0/24"

    @property
    def gateway(self) -> str:
        return f"{self.prefix}.1"


@dataclass
class Host:
    """A machine: its namespace, address, host name and directory."""
    network: "Network"
    name: str  # its host name too
    segment: Segment
    address: str
    root: Path
    procs: dict[str, subprocess.Popen] = field(default_factory=dict)

    @property
    def ns(self) -> str:
        return f"{self.network.id}-{self.name}"

    @property
    def ns_path(self) -> Path:
        return NETNS_DIR / self.ns

    @property
    def port_name(self) -> str:
        """Its veth end in the router namespace."""
        return f"v-{self.name}"[:15]

    @property
    def tmp(self) -> Path:
        return self.root / "tmp"

    @property
    def home(self) -> Path:
        return self.root / "home"

    @property
    def logs(self) -> Path:
        return self.root / "log"

    def path(self, path: str | Path) -> Path:
        """A path of this machine's file system, in the host's directory (`/var/lib/x` -> root/var/lib/x)."""
        return self.root / str(path).lstrip("/")

    def env(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        """A clean environment: the Python environment's bin first on PATH, own HOME and TMPDIR."""
        bindir = str(Path(sys.executable).parent)
        env = {"PATH": f"{bindir}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
               "HOME": str(self.home), "TMPDIR": str(self.tmp), "LANG": "C.UTF-8", "PYTHONUNBUFFERED": "1"}
        env.update(extra or {})
        return env

    def argv(self, argv: list[str]) -> list[str]:
        return [sys.executable, str(HOSTEXEC), str(self.ns_path), self.name, str(self.network.hosts_file), "--",
                *argv]

    def spawn(self, argv: list[str], env: dict[str, str] | None = None, log: str | None = None) -> subprocess.Popen:
        """Start a long-running process on this host; its output goes to root/log/<log>.log."""
        name = log or Path(argv[0]).name
        self.logs.mkdir(parents=True, exist_ok=True)
        with open(self.logs / f"{name}.log", "ab") as out:
            proc = subprocess.Popen(self.argv(argv), env=self.env(env), stdout=out, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, cwd=self.home, start_new_session=True)
        self.procs[name] = proc
        return proc

    def run(self, argv: list[str], env: dict[str, str] | None = None, timeout: float = 120,
            check: bool = True, input: str | None = None) -> subprocess.CompletedProcess:
        """Run a command on this host to its end; its output is returned."""
        proc = subprocess.run(self.argv(argv), env=self.env(env), capture_output=True, text=True, cwd=self.home,
                              timeout=timeout, input=input)
        if check and proc.returncode != 0:
            raise NetnsError(f"{self.name}: {' '.join(argv)}: exit {proc.returncode}: "
                             f"{proc.stderr.strip() or proc.stdout.strip()}")
        return proc

    def stop(self, name: str, timeout: float = 20) -> None:
        """SIGTERM a process started with spawn(); SIGKILL its process group if it lingers."""
        proc = self.procs.pop(name, None)
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            log.warning("%s on %s did not stop within %g s; killing it", name, self.name, timeout)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()

    def pids(self) -> list[int]:
        return namespace_pids(self.ns)

    def kill_all(self, sig: int = signal.SIGKILL) -> list[int]:
        """Every process on the host at once, like pulling its power cord (by default)."""
        pids = kill_namespace(self.ns, sig)
        for proc in self.procs.values():  # also one still on its way into the namespace
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, sig)
        for proc in self.procs.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(10)
        self.procs.clear()
        return pids

    def session(self) -> requests.Session:
        """A requests session whose connections are made from this host."""
        s = requests.Session()
        adapter = _HostAdapter(self.ns_path)
        s.mount("http://", adapter)
        s.mount("https://", adapter)
        return s

    def socket(self, *args, **kw) -> socket.socket:
        """A socket of this host (bind/connect it as usual)."""
        with entered(self.ns_path):
            return socket.socket(*args, **kw)


class Network:
    """The router namespace, its LANs and the hosts on them. See the module docstring."""

    def __init__(self, base: Path):
        sweep_stale()
        self.id = f"{PREFIX}{os.getpid()}{secrets.token_hex(2)}"
        self.base = Path(base)
        self.base.mkdir(parents=True, exist_ok=True)
        self.hosts_file = self.base / "hosts"
        self.segments: dict[str, Segment] = {}
        self.hosts: dict[str, Host] = {}
        self._delayer: subprocess.Popen | None = None
        self._impaired: list[tuple[str, ...]] = []  # commands that undo the impairment
        self._closed = False
        self.router = f"{self.id}-router"
        sh("ip", "netns", "add", self.router)
        atexit.register(self.close)
        self.iptables = iptables_command(self.router) or "iptables"
        try:
            self._router_setup()
        except Exception:
            self.close()
            raise
        self.netem = _netem_works(self.router)

    # --- building -------------------------------------------------------------------

    def _in_router(self, *argv: str, check: bool = True) -> subprocess.CompletedProcess:
        return sh("ip", "netns", "exec", self.router, *argv, check=check)

    def _router_setup(self) -> None:
        r = self.router
        sh("ip", "-n", r, "link", "set", "lo", "up")
        self._in_router("sysctl", "-qw", "net.ipv4.ip_forward=1", "net.ipv4.conf.all.rp_filter=0",
                        "net.ipv4.conf.default.rp_filter=0")
        # Bridged frames stay out of iptables (br_netfilter would pass them through FORWARD).
        self._in_router("sysctl", "-qw", "net.bridge.bridge-nf-call-iptables=0", check=False)
        for chain in ("FM-CUT", "FM-IMPAIR"):
            self._in_router(self.iptables, "-N", chain)
            self._in_router(self.iptables, "-A", "FORWARD", "-j", chain)
        self._in_router(self.iptables, "-t", "mangle", "-N", "FM-COUNT")
        self._in_router(self.iptables, "-t", "mangle", "-A", "PREROUTING", "-j", "FM-COUNT")

    def add_segment(self, name: str, prefix: str) -> Segment:
        seg = Segment(name, prefix)
        r = self.router
        sh("ip", "-n", r, "link", "add", seg.bridge, "type", "bridge")
        sh("ip", "-n", r, "addr", "add", f"{seg.gateway}/24", "dev", seg.bridge)
        sh("ip", "-n", r, "link", "set", seg.bridge, "up")
        for other in self.segments.values():  # count what crosses between each pair of LANs
            for a, b in ((seg, other), (other, seg)):
                self._in_router(self.iptables, "-t", "mangle", "-A", "FM-COUNT", "-i", a.bridge, "-d", b.subnet,
                                "-m", "comment", "--comment", f"{a.name}>{b.name}")
        self.segments[name] = seg
        return seg

    def add_host(self, name: str, segment: str, address: str) -> Host:
        seg = self.segments[segment]
        host = Host(self, name, seg, address, self.base / name)
        for d in (host.root, host.tmp, host.home, host.logs):
            d.mkdir(parents=True, exist_ok=True)
        sh("ip", "netns", "add", host.ns)
        self.hosts[name] = host
        r, h = self.router, host.ns
        sh("ip", "link", "add", host.port_name, "netns", r, "type", "veth", "peer", "name", "eth0", "netns", h)
        sh("ip", "-n", r, "link", "set", host.port_name, "master", seg.bridge, "up")
        for argv in (("link", "set", "lo", "up"), ("link", "set", "eth0", "up"),
                     ("addr", "add", f"{address}/24", "dev", "eth0"),
                     ("route", "add", "default", "via", seg.gateway)):
            sh("ip", "-n", h, *argv)
        return host

    def start(self) -> None:
        """Write the hosts file every host sees as /etc/hosts (call after the last add_host)."""
        lines = ["127.0.0.1 localhost", "::1 localhost"]
        lines += [f"{h.address} {h.name}" for h in self.hosts.values()]
        self.hosts_file.write_text("\n".join(lines) + "\n")

    def host(self, name: str) -> Host:
        return self.hosts[name]

    # --- traffic ------------------------------------------------------------------------

    def traffic(self) -> dict[tuple[str, str], int]:
        """Bytes (IP packets, headers included) that entered the router from one LAN for
        another since the last reset_traffic(): {(from, to): bytes}. Counted as they arrive,
        so packets a fault then drops are counted too."""
        out = self._in_router(self.iptables, "-t", "mangle", "-L", "FM-COUNT", "-v", "-x", "-n").stdout
        counts = {}
        for line in out.splitlines():
            m = re.search(r"^\s*\d+\s+(\d+).*/\* (\S+)>(\S+) \*/", line)
            if m:
                counts[(m.group(2), m.group(3))] = int(m.group(1))
        return counts

    def reset_traffic(self) -> None:
        self._in_router(self.iptables, "-t", "mangle", "-Z", "FM-COUNT")

    # --- faults -----------------------------------------------------------------------

    def cut(self, a: Host, b: Host, both_ways: bool = True) -> None:
        """Drop every packet from a to b (and b to a): a pulled cable between them."""
        pairs = [(a, b), (b, a)] if both_ways else [(a, b)]
        for src, dst in pairs:
            self._in_router(self.iptables, "-A", "FM-CUT", "-s", src.address, "-d", dst.address, "-j", "DROP")

    def heal(self) -> None:
        """Undo every cut."""
        self._in_router(self.iptables, "-F", "FM-CUT")

    def impair(self, segment: str, delay_ms: float = 0, loss: float = 0.0) -> None:
        """Every packet into and out of the LAN is delayed by `delay_ms` and lost with
        probability `loss`, in each direction (so a round trip takes 2 x delay_ms more)."""
        self.clear_impairment()
        seg = self.segments[segment]
        if self.netem:
            self._impair_netem(seg, delay_ms, loss)
        else:
            if delay_ms:
                self._impair_tun(seg, delay_ms)
            if loss:
                for direction in ("-i", "-o"):
                    self._in_router(self.iptables, "-A", "FM-IMPAIR", direction, seg.bridge, "-m", "statistic",
                                    "--mode", "random", "--probability", f"{loss:.6f}", "-j", "DROP")
        log.info("impaired %s: %g ms each way, %.1f%% loss each way (%s)", segment, delay_ms, loss * 100,
                 "netem" if self.netem else "tun_delay + iptables")

    def _impair_netem(self, seg: Segment, delay_ms: float, loss: float) -> None:
        spec = ["netem", "delay", f"{delay_ms:g}ms", "loss", f"{loss * 100:g}%"]
        for host in self.hosts.values():
            if host.segment is seg:
                for ns, dev in ((self.router, host.port_name), (host.ns, "eth0")):
                    sh("ip", "netns", "exec", ns, "tc", "qdisc", "replace", "dev", dev, "root", *spec)
                    self._impaired.append(("ip", "netns", "exec", ns, "tc", "qdisc", "del", "dev", dev, "root"))

    def _impair_tun(self, seg: Segment, delay_ms: float) -> None:
        r, dev, table = self.router, "fm-delay", "77"
        sh("ip", "-n", r, "tuntap", "add", "dev", dev, "mode", "tun")
        self._impaired.append(("ip", "-n", r, "tuntap", "del", "dev", dev, "mode", "tun"))
        self._delayer = subprocess.Popen(["ip", "netns", "exec", r, sys.executable, str(TUN_DELAY), dev,
                                          f"{delay_ms:g}"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                         text=True, start_new_session=True)
        ready = self._delayer.stdout.readline().strip()
        if ready != "ready":
            self._delayer.kill()
            raise NetnsError(f"tun_delay did not start: {ready} {self._delayer.stderr.read()}")
        self._in_router("sysctl", "-qw", f"net.ipv4.conf.{dev}.rp_filter=0")
        sh("ip", "-n", r, "link", "set", dev, "up")
        sh("ip", "-n", r, "route", "replace", "default", "dev", dev, "table", table)
        # Packets back from the delay go on as usual; packets from or to the LAN go through it.
        rules = [("pref", "1000", "iif", dev, "lookup", "main"),
                 ("pref", "1001", "iif", seg.bridge, "lookup", table),
                 ("pref", "1002", "to", seg.subnet, "lookup", table)]
        for rule in rules:
            sh("ip", "-n", r, "rule", "add", *rule)
            self._impaired.append(("ip", "-n", r, "rule", "del", *rule))

    def clear_impairment(self) -> None:
        self._in_router(self.iptables, "-F", "FM-IMPAIR", check=False)
        for argv in reversed(self._impaired):
            sh(*argv, check=False)
        self._impaired.clear()
        if self._delayer is not None:
            self._delayer.kill()
            self._delayer.wait()
            self._delayer.stdout.close()
            self._delayer.stderr.close()
            self._delayer = None

    # --- the end ----------------------------------------------------------------------

    def close(self) -> None:
        """Kill every process on every host, delete the namespaces (links and bridges go with
        them). Safe to call twice; also runs at interpreter exit."""
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(Exception):
            self.clear_impairment()
        for host in self.hosts.values():
            for name in list(host.procs):
                host.stop(name, timeout=5)
            remove_namespace(host.ns)
        remove_namespace(self.router)
        atexit.unregister(self.close)
