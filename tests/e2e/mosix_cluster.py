"""End-to-end hosts for the MOSIX stack: real mosixd in network namespaces.

A MosixCluster makes nodes on this machine (needs root):

  * node nI lives in network namespace ``mxe2e-<id>-nI`` with one veth whose
    other end is a port of the bridge ``mxb<id>`` in the root namespace; the
    bridge carries a /24 of 10.253.X.0 that nothing else here uses (node I
    is .I, the root namespace is .254, so a test can send packets too);
  * in it runs a real ``mosixd -f --config nI.toml`` (generated), whose
    unix socket /run/mosix-e2e-<id>/nI.sock is reachable from the root
    namespace (path sockets are not per network namespace), so the tools
    (mosmon, mosctl) run here as a user would on the node;
  * logs: /run/mosix-e2e-<id>/nI.log.

close() kills the daemons and removes the namespaces, the bridge and the
directory. A cluster whose owner died without closing is reaped by the next
one (its owner pid is recorded).
"""

import json
import math
import os
import random
import shutil
import signal
import subprocess
import time
from pathlib import Path

RUN_BASE = Path("/run")
PREFIX = "mosix-e2e-"     # /run/mosix-e2e-<id>
NS_PREFIX = "mxe2e-"      # netns mxe2e-<id>-nI
PORT = 7000               # every node's UDP gossip port
KEY = "e2e-cluster-key-0123456789abcdef"


class ClusterError(RuntimeError):
    pass


def _run(cmd, check=True, **kw):
    p = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if check and p.returncode != 0:
        raise ClusterError("%s: rc %d: %s" % (" ".join(cmd), p.returncode,
                                              (p.stderr or p.stdout).strip()))
    return p


def build_dir():
    d = os.environ.get("MRC_BUILD_DIR")
    if d:
        return Path(d)
    return Path(__file__).resolve().parents[2] / "build"


def wait_for(pred, timeout, interval=0.1):
    """Polls pred() until it returns a true value (returned) or timeout s."""
    end = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() >= end:
            return v
        time.sleep(interval)


def expected_ages(n, w):
    """DESIGN §7 (Amar, Barak, Drezner, Okun 2009): expected average and
    maximum age, in steps, for n nodes and window w (w < n)."""
    t = ((n - 1) / n) * math.log(w * (n - 1) / (n - w))
    e = math.exp(n * t / (n - 1))
    x = n * e / (n - 1 + e)
    a_w = t - ((n - 1) / x) * (math.log(n - 1 + e) - math.log(n))
    avg = 1 / (1 - (1 - 1 / (n - 1)) ** x) + a_w
    mx = -(math.log(n) + 0.577) / (x * math.log(1 - 1 / (n - 1)))
    return avg, mx


def require(*binaries, tools=()):
    """Skips the test unless root and the built `binaries` (and the
    programs `tools` on PATH) are there; with CI=true it fails instead."""
    import pytest
    why = None
    if os.geteuid() != 0:
        why = "needs root (network namespaces)"
    for b in binaries:
        if not MosixCluster.bin(b).exists():
            why = "%s not built in %s" % (b, build_dir())
    for t in tools:
        if not shutil.which(t):
            why = "%s not installed" % t
    if why:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(why)
        pytest.skip(why)


def _reap_stale():
    """Removes clusters whose owner process is gone."""
    for d in RUN_BASE.glob(PREFIX + "*"):
        try:
            owner = int((d / "owner").read_text())
            os.kill(owner, 0)
            continue  # alive
        except (OSError, ValueError):
            pass
        cid = d.name[len(PREFIX):]
        _teardown(cid, d)


def _teardown(cid, d):
    for p in d.glob("*.pid"):
        try:
            os.kill(int(p.read_text()), signal.SIGKILL)
        except (OSError, ValueError):
            pass
    out = _run(["ip", "netns", "list"], check=False).stdout
    for line in out.splitlines():
        name = line.split()[0] if line.strip() else ""
        if name.startswith(NS_PREFIX + cid + "-"):
            _run(["ip", "netns", "pids", name], check=False)
            for pid in _run(["ip", "netns", "pids", name], check=False).stdout.split():
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except OSError:
                    pass
            _run(["ip", "netns", "del", name], check=False)
    _run(["ip", "link", "del", "mxb" + cid], check=False)
    shutil.rmtree(d, ignore_errors=True)


class Node:
    def __init__(self, cluster, index, cluster_id):
        self.c = cluster
        self.id = index
        self.cluster_id = cluster_id
        self.ns = "%s%s-n%d" % (NS_PREFIX, cluster.id, index)
        self.ip = "%s.%d" % (cluster.net, index)
        self.address = "%s:%d" % (self.ip, PORT)
        self.socket = cluster.dir / ("n%d.sock" % index)
        self.config = cluster.dir / ("n%d.toml" % index)
        self.log = cluster.dir / ("n%d.log" % index)
        self.proc = None

    def __repr__(self):
        return "n%d" % self.id

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def json(self, timeout=5):
        """mosmon --json of this node, parsed; None if it failed."""
        p = subprocess.run([str(self.c.bin("mosmon")), "--json", "--socket", str(self.socket)],
                           capture_output=True, text=True, timeout=timeout)
        if p.returncode != 0:
            return None
        return json.loads(p.stdout)

    def ids(self):
        j = self.json()
        return None if j is None else sorted(e["id"] for e in j["nodes"])

    def status(self):
        p = subprocess.run([str(self.c.bin("mosctl")), "--socket", str(self.socket), "--json", "status"],
                           capture_output=True, text=True, timeout=5)
        if p.returncode != 0:
            raise ClusterError("mosctl status on %r: %s" % (self, p.stderr.strip()))
        return json.loads(p.stdout)

    def log_tail(self, n=30):
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return "(no log)"


class MosixCluster:
    """Nodes 1..n (or as given) on one bridge; see the module docstring."""

    def __init__(self, step_ms=500, window=4, age_limit_s=None, label="mx"):
        _reap_stale()
        self.step_ms = step_ms
        self.window = window
        self.age_limit_s = age_limit_s
        self.id = "%06x" % random.randrange(1 << 24)
        self.dir = RUN_BASE / (PREFIX + self.id)
        self.dir.mkdir(mode=0o700)
        (self.dir / "owner").write_text(str(os.getpid()))
        self.net = self._free_net()
        self.bridge = "mxb" + self.id
        self.nodes = {}
        self.daemon_args = []  # more mosixd options (["-v"]: its info lines in the node's log)
        # Node id -> a directory that node's mosixd sees as a tmpfs of its
        # own (a mount namespace of its own): a host tree that differs
        # from the other nodes', as a real machine's does.
        self.private_dirs = {}
        # Node id -> more environment for that node's mosixd (fault
        # injection: MOSIX_FAULT_*), taken when it is started.
        self.node_env = {}
        _run(["ip", "link", "add", self.bridge, "type", "bridge"])
        _run(["ip", "addr", "add", self.net + ".254/24", "dev", self.bridge])
        _run(["ip", "link", "set", self.bridge, "up"])

    @staticmethod
    def bin(name):
        return build_dir() / "bin" / name

    def _free_net(self):
        used = _run(["ip", "-o", "addr"]).stdout + _run(["ip", "route"]).stdout
        free = [x for x in range(1, 254) if "10.253.%d." % x not in used]
        if not free:
            raise ClusterError("no free 10.253.X.0/24 subnet")
        return "10.253.%d" % random.choice(free)

    def add(self, index, cluster_id=1):
        """Makes node `index`'s namespace and link (not its daemon)."""
        n = Node(self, index, cluster_id)
        host_end = "mx%sn%dh" % (self.id, index)
        _run(["ip", "netns", "add", n.ns])
        _run(["ip", "link", "add", host_end, "type", "veth", "peer", "name", "eth0", "netns", n.ns])
        _run(["ip", "link", "set", host_end, "master", self.bridge])
        _run(["ip", "link", "set", host_end, "up"])
        nx = ["ip", "-n", n.ns]
        _run(nx + ["addr", "add", n.ip + "/24", "dev", "eth0"])
        _run(nx + ["link", "set", "eth0", "up"])
        _run(nx + ["link", "set", "lo", "up"])
        self.nodes[index] = n
        return n

    def write_config(self, n, members, peer_clusters=(), seeds=(), extra_members=()):
        """`members`: nodes of n's cluster listed in [cluster] nodes;
        `peer_clusters`: [(cluster_id, [nodes])]; `extra_members`: raw
        (id, "ip:port") pairs (a fake peer the test listens as)."""
        def entry(m):
            return '{ id = %d, address = "%s" }' % (m.id, m.address)
        lines = ["[node]", "id = %d" % n.id, 'address = "%s"' % n.address,
                 "cluster = %d" % n.cluster_id, 'socket = "%s"' % n.socket, "",
                 "[cluster]"]
        listed = [entry(m) for m in members] + ['{ id = %d, address = "%s" }' % e for e in extra_members]
        if listed:
            lines.append("nodes = [%s]" % ", ".join(listed))
        if seeds:
            lines.append("seeds = [%s]" % ", ".join('"%s"' % s.address for s in seeds))
        lines += ['key = "%s"' % KEY, "", "[gossip]", "step_ms = %d" % self.step_ms,
                  "window = %d" % self.window]
        if self.age_limit_s is not None:
            lines.append("age_limit_s = %g" % self.age_limit_s)
        for cid, nodes in peer_clusters:
            lines += ["", "[[peer_cluster]]", "id = %d" % cid, "priority = 10",
                      "nodes = [%s]" % ", ".join(entry(m) for m in nodes)]
        n.config.write_text("\n".join(lines) + "\n")

    def start(self, n):
        """Starts n's mosixd and waits until its socket answers."""
        logf = open(n.log, "ab")
        wrap = []
        if n.id in self.private_dirs:  # every step execs: the pid stays mosixd's
            wrap = ["unshare", "-m", "--propagation", "private", "sh", "-c",
                    'mount -t tmpfs mosix-e2e-private "$0" && exec "$@"', str(self.private_dirs[n.id])]
        n.proc = subprocess.Popen(
            ["ip", "netns", "exec", n.ns] + wrap + [str(self.bin("mosixd")), "-f", "--config", str(n.config)] +
            self.daemon_args,
            stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env=dict(os.environ, **self.node_env.get(n.id, {})))
        logf.close()
        (self.dir / ("n%d.pid" % n.id)).write_text(str(n.proc.pid))
        ok = wait_for(lambda: not n.alive() or (n.socket.exists() and n.json() is not None), 20)
        if not n.alive() or not ok:
            raise ClusterError("mosixd of %r did not come up:\n%s" % (n, n.log_tail()))

    def one_cluster(self, ids, start=True):
        """Nodes `ids` of cluster 1, each listing all of them; started."""
        nodes = [self.add(i) for i in ids]
        for x in nodes:
            self.write_config(x, nodes)
        if start:
            for x in nodes:
                self.start(x)
        return nodes

    def two_clusters(self, a_ids, b_ids):
        """Clusters 1 (`a_ids`) and 2 (`b_ids`), each a peer cluster of the
        other; started. Returns (a, b)."""
        a = [self.add(i, cluster_id=1) for i in a_ids]
        b = [self.add(i, cluster_id=2) for i in b_ids]
        for x in a:
            self.write_config(x, a, peer_clusters=[(2, b)])
        for x in b:
            self.write_config(x, b, peer_clusters=[(1, a)])
        for x in a + b:
            self.start(x)
        return a, b

    def kill9(self, n):
        n.proc.send_signal(signal.SIGKILL)
        n.proc.wait()

    def close(self):
        for n in self.nodes.values():
            if n.alive():
                n.proc.kill()
                n.proc.wait()
        _teardown(self.id, self.dir)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
