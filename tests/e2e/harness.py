"""End-to-end test hosts for mrc: network namespaces with a real sshd each.

A Harness makes N targets on this machine (needs root):

  * target tN lives in network namespace ``mrce2e-<id>-tN``, joined to the
    root namespace (the head node) by a veth pair; the pair gets a /24 of
    10.254.X.0 that no interface of this machine uses (head .1, target .2);
  * in it runs a real OpenSSH sshd, started inside its own private mount
    namespace where fresh tmpfs cover /tmp and /root: the head's test data
    (under /tmp/mrc-e2e-<id>/) is invisible there and the target has its own
    empty home, so a passing test proves the data came through mrc;
  * sshd's files (config, host key, authorized_keys, log) live under
    /run/mrc-e2e-<id>/tN/, which stays visible;
  * the head gets a user key and /run/mrc-e2e-<id>/ssh_config with one
    ``Host tN`` block per target (plus ``tN-dead``: an address of tN's subnet
    nobody answers, and ``tN-closed``: tN's address on a closed port).

close() always tears everything down (processes in the namespaces, the
namespaces, the veth pairs, both directories). A harness whose owner process
died without closing (kill -9, ctest timeout) is reaped by the next Harness.

This module has no pytest dependency except for pytest.fail in helpers that
tests call; conftest.py turns it into fixtures.
"""

import atexit
import fcntl
import json
import os
import random
import re
import shlex
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

RUN_BASE = Path("/run")
TMP_BASE = Path("/tmp")
PREFIX = "mrc-e2e-"          # /run/mrc-e2e-<id>, /tmp/mrc-e2e-<id>
NS_PREFIX = "mrce2e-"        # netns mrce2e-<id>-tN
LOCK_FILE = RUN_BASE / "mrc-e2e.lock"
SSHD = "/usr/sbin/sshd"
CONNECT_TIMEOUT = 5          # ConnectTimeout in the generated ssh configs
_ID_RE = re.compile(r"^[0-9a-f]{6}$")

_live = set()                # harnesses not yet closed, for atexit


class HarnessError(RuntimeError):
    pass


# --------------------------------------------------------------------------
# small helpers

def _run(cmd, check=True, **kw):
    """Run an argv list, capture text output; raise HarnessError on failure."""
    kw.setdefault("stdout", subprocess.PIPE)
    kw.setdefault("stderr", subprocess.PIPE)
    kw.setdefault("text", True)
    kw.setdefault("timeout", 30)
    cp = subprocess.run(cmd, **kw)
    if check and cp.returncode != 0:
        raise HarnessError("command failed (rc=%s): %s\n%s%s" % (
            cp.returncode, " ".join(map(shlex.quote, cmd)), cp.stdout,
            cp.stderr))
    return cp


def tail(text, limit=3000):
    if text is None:
        return ""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return text if len(text) <= limit else "...[cut]...\n" + text[-limit:]


def file_tail(path, lines=30):
    try:
        data = Path(path).read_text(errors="replace").splitlines()
    except OSError as e:
        return "<%s>" % e
    return "\n".join(data[-lines:])


def _pids():
    for d in os.listdir("/proc"):
        if d.isdigit():
            yield int(d)


def _readlink(p):
    try:
        return os.readlink(p)
    except OSError:
        return None


def _ppid(pid):
    try:
        stat = Path("/proc/%d/stat" % pid).read_text()
        return int(stat[stat.rindex(")") + 2:].split()[1])
    except (OSError, ValueError, IndexError):
        return None


def cmdline(pid):
    try:
        raw = Path("/proc/%d/cmdline" % pid).read_bytes()
    except OSError:
        return None
    return raw.replace(b"\0", b" ").decode("utf-8", "replace").strip()


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie counts as gone
    try:
        st = Path("/proc/%d/stat" % pid).read_text()
        return st[st.rindex(")") + 2] != "Z"
    except (OSError, ValueError, IndexError):
        return False


def _starttime(pid):
    try:
        st = Path("/proc/%d/stat" % pid).read_text()
        return st[st.rindex(")") + 2:].split()[19]
    except (OSError, IndexError, ValueError):
        return None


def wait_for(pred, timeout=10.0, interval=0.05):
    """Poll pred() until it returns a truthy value (returned) or timeout
    (returns the last falsy value)."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v or time.monotonic() >= deadline:
            return v
        time.sleep(interval)


def _mount_points_under(prefix):
    """Mount points of the calling process's namespace under prefix."""
    out = []
    try:
        for line in Path("/proc/self/mountinfo").read_text().splitlines():
            mp = line.split()[4].encode().decode("unicode_escape")
            if mp == prefix or mp.startswith(prefix + "/"):
                out.append(mp)
    except OSError:
        pass
    return out


def _safe_rmtree(path):
    path = str(path)
    if not os.path.lexists(path):
        return
    # never descend into something mounted there (an sshfs/FUSE mount left
    # under our dir would otherwise have its remote side deleted)
    for mp in sorted(_mount_points_under(path), key=len, reverse=True):
        subprocess.run(["umount", "-l", mp], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
    shutil.rmtree(path, ignore_errors=True)


def environment_problems():
    """Reasons the e2e hosts cannot be made here (empty list: all good)."""
    probs = []
    if os.geteuid() != 0:
        probs.append("not root (network/mount namespaces need root)")
    if not os.path.exists("/dev/fuse"):
        probs.append("no /dev/fuse")
    for exe in (SSHD, "/usr/bin/ssh", "/usr/bin/ssh-keygen"):
        if not os.access(exe, os.X_OK):
            probs.append("missing %s (apt-get install openssh-server "
                         "openssh-client)" % exe)
    for exe in ("ip", "nsenter", "unshare", "mount"):
        if shutil.which(exe) is None:
            probs.append("missing %s (apt-get install iproute2 util-linux "
                         "mount)" % exe)
    return probs


def default_build_dir():
    env = os.environ.get("MRC_BUILD_DIR")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2] / "build"


# --------------------------------------------------------------------------

class Target:
    """One test host. Attributes: name ('t1'), ns (netns name), ip, head_ip,
    net ('10.254.X'), dir (/run/mrc-e2e-<id>/tN), log (sshd log path),
    host_pub (the host key's public line), pid (sshd's pid)."""

    def __init__(self, harness, index, net):
        self.index = index
        self.name = "t%d" % index
        self.ns = "%s%s-%s" % (NS_PREFIX, harness.id, self.name)
        self.veth_head = "me%st%dh" % (harness.id, index)
        self.veth_target = "me%st%dt" % (harness.id, index)
        self.net = net
        self.head_ip = net + ".1"
        self.ip = net + ".2"
        self.unused_ip = net + ".99"     # on the link, nobody answers
        self.dir = harness.run_dir / self.name
        self.config = self.dir / "sshd_config"
        self.host_key = self.dir / "ssh_host_ed25519_key"
        self.authorized_keys = self.dir / "authorized_keys"
        self.log = self.dir / "sshd.log"
        self.proc = None
        self.host_pub = None
        self._netns_id = None

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def __repr__(self):
        return "<Target %s %s ns=%s>" % (self.name, self.ip, self.ns)


class Harness:
    """N targets plus the head-side files. Use as a context manager or call
    start()/close(). See the module docstring and tests/e2e/README.md."""

    def __init__(self, n_targets=1, build_dir=None, label="e2e"):
        self.n_targets = n_targets
        self.label = re.sub(r"[^A-Za-z0-9_.-]", "_", label)
        self.build_dir = Path(build_dir) if build_dir else default_build_dir()
        self.mrc_bin = self.build_dir / "bin" / "mrc"
        self.mrc_target_bin = self.build_dir / "bin" / "mrc-target"
        self.id = None
        self.targets = []
        self.failed = False          # set by conftest when a test failed
        self.default_cwd = None      # set by the workdir fixture
        self._popened = []
        self._link_nets = []  # 10.254.X of link()s between targets
        self._seq = 0
        self._closed = False
        self.setup_seconds = None
        self.teardown_seconds = None

    # ------------------------------------------------------------ lifecycle

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def start(self):
        t0 = time.monotonic()
        probs = environment_problems()
        if probs:
            raise HarnessError("cannot make e2e hosts: " + "; ".join(probs))
        reap_stale()
        with _Lock():
            self.id = self._new_id()
            self.run_dir = RUN_BASE / (PREFIX + self.id)
            self.tmp_dir = TMP_BASE / (PREFIX + self.id)
            self.run_dir.mkdir(mode=0o755)
            _live.add(self)
            self.tmp_dir.mkdir(mode=0o755)
            self.head_root = self.tmp_dir / "head"
            self.head_root.mkdir()
            self.log_dir = self.run_dir / "logs"
            self.log_dir.mkdir()
            self.home = self.run_dir / "home"     # HOME for mrc on the head
            self.home.mkdir(mode=0o700)
            (self.run_dir / "owner").write_text(
                "%d %s\n" % (os.getpid(), _starttime(os.getpid())))
            try:
                for i in range(1, self.n_targets + 1):
                    t = Target(self, i, self._free_net())
                    self.targets.append(t)
                    self._save_state()
                    self._make_link(t)
            except BaseException:
                self.close()
                raise
        try:
            self._make_keys()
            for t in self.targets:
                self._start_sshd(t)
            for t in self.targets:
                self._wait_sshd(t)
            self.known_hosts = self.run_dir / "known_hosts"
            self.known_hosts.write_text(
                "".join("%s %s\n" % (t.ip, t.host_pub) for t in self.targets))
            self.ssh_config = self.write_ssh_config(
                self.run_dir / "ssh_config", self.known_hosts)
        except BaseException:
            self.close()
            raise
        self.setup_seconds = time.monotonic() - t0
        return self

    def close(self, keep_logs_to=None):
        """Tear everything down; idempotent. With keep_logs_to (a dir) or
        self.failed, copy /run/mrc-e2e-<id> (logs, configs) first."""
        if self._closed or self.id is None:
            return
        self._closed = True
        t0 = time.monotonic()
        try:
            if keep_logs_to is None and self.failed:
                keep_logs_to = self.build_dir / "e2e-logs"
            if keep_logs_to is not None:
                self.save_logs(keep_logs_to)
            for p in self._popened:
                _killpg(p)
                if p.poll() is None:
                    p.kill()
                    try:
                        p.wait(5)
                    except subprocess.TimeoutExpired:
                        pass
            _teardown(self.id, [t.__dict__ for t in self.targets],
                      [t.pid for t in self.targets if t.pid])
            for t in self.targets:
                if t.proc is not None:
                    try:
                        t.proc.wait(5)
                    except subprocess.TimeoutExpired:
                        pass
        finally:
            _live.discard(self)
            self.teardown_seconds = time.monotonic() - t0

    def save_logs(self, dest):
        dest = Path(dest) / ("%s-%s" % (self.label, self.id))
        try:
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copytree(self.run_dir, dest, dirs_exist_ok=True,
                            ignore=shutil.ignore_patterns(
                                "*_key", "id_ed25519", "home"))
            self.saved_logs = dest
        except OSError:
            pass
        return dest

    # ------------------------------------------------------------ setup

    def _new_id(self):
        while True:
            i = "%06x" % random.getrandbits(24)
            if not (RUN_BASE / (PREFIX + i)).exists() and \
                    not (TMP_BASE / (PREFIX + i)).exists():
                return i

    def _free_net(self):
        """A 10.254.X /24 no address or route of this machine touches."""
        used = _run(["ip", "-o", "addr"]).stdout + \
            _run(["ip", "route", "show", "table", "all"]).stdout
        taken = set(int(m) for m in re.findall(r"10\.254\.(\d+)\.", used))
        taken |= {int(t.net.split(".")[2]) for t in self.targets}
        taken |= {int(n.split(".")[2]) for n in self._link_nets}
        free = [x for x in range(1, 255) if x not in taken]
        if not free:
            raise HarnessError("no free 10.254.X.0/24 subnet")
        return "10.254.%d" % random.choice(free)

    def _save_state(self):
        state = {"id": self.id, "targets": [
            {k: str(v) for k, v in t.__dict__.items()
             if k in ("ns", "veth_head", "net")} for t in self.targets]}
        (self.run_dir / "state.json").write_text(json.dumps(state))

    def _make_link(self, t):
        _run(["ip", "netns", "add", t.ns])
        _run(["ip", "link", "add", t.veth_head, "type", "veth", "peer",
              "name", t.veth_target, "netns", t.ns])
        _run(["ip", "addr", "add", t.head_ip + "/24", "dev", t.veth_head])
        _run(["ip", "link", "set", t.veth_head, "up"])
        nx = ["ip", "-n", t.ns]
        _run(nx + ["addr", "add", t.ip + "/24", "dev", t.veth_target])
        _run(nx + ["link", "set", t.veth_target, "up"])
        _run(nx + ["link", "set", "lo", "up"])

    def _make_keys(self):
        self.key = self.run_dir / "id_ed25519"
        _run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C",
              "mrc-e2e-" + self.id, "-f", str(self.key)])
        pub = (self.run_dir / "id_ed25519.pub").read_text()
        for t in self.targets:
            t.dir.mkdir(mode=0o755)
            _run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C",
                  t.name, "-f", str(t.host_key)])
            t.host_pub = " ".join(
                Path(str(t.host_key) + ".pub").read_text().split()[:2])
            t.authorized_keys.write_text(pub)
            t.config.write_text("\n".join([
                "ListenAddress 0.0.0.0",  # its netns only: the head link and link()s
                "Port 22",
                "PidFile none",
                "UsePAM no",
                "StrictModes no",
                "PermitRootLogin prohibit-password",
                "AuthorizedKeysFile %s" % t.authorized_keys,
                "PasswordAuthentication no",
                "KbdInteractiveAuthentication no",
                "Subsystem sftp internal-sftp",
                "AcceptEnv none",
                "HostKey %s" % t.host_key,
                "UseDNS no",
                "PrintMotd no",
                "LogLevel VERBOSE",
                ""]))

    def _start_sshd(self, t):
        inner = " && ".join([
            "mkdir -p -m 0755 /run/sshd",   # sshd's privsep dir (Debian)
            "mount -t tmpfs -o mode=1777,size=1g mrc-e2e-tmp /tmp",
            "mount -t tmpfs -o mode=0700,size=1g mrc-e2e-home /root",
            "exec %s -D -e -f %s" % (SSHD, shlex.quote(str(t.config))),
        ])
        log = open(t.log, "ab")
        try:
            # ip netns exec and unshare (without --fork) both exec, so the
            # Popen's pid ends up being sshd's own pid.
            t.proc = subprocess.Popen(
                ["ip", "netns", "exec", t.ns, "unshare", "--mount",
                 "--propagation", "private", "sh", "-c", inner],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                start_new_session=True)
        finally:
            log.close()

    def _wait_sshd(self, t):
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if t.proc.poll() is not None:
                raise HarnessError("sshd of %s exited (rc=%s):\n%s" % (
                    t.name, t.proc.returncode, file_tail(t.log)))
            try:
                with socket.create_connection((t.ip, 22), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.05)
        raise HarnessError("sshd of %s does not accept on %s:22 within 10 s:"
                           "\n%s" % (t.name, t.ip, file_tail(t.log)))

    def link(self, a, b):
        """A direct veth between targets a and b on a /24 of its own (both
        ends inside the targets' namespaces: it goes with them). Returns
        the addresses of a and b on it."""
        a, b = self.target(a), self.target(b)
        net = self._free_net()
        self._link_nets.append(net)
        va = "me%sl%d%da" % (self.id, a.index, b.index)
        vb = "me%sl%d%db" % (self.id, a.index, b.index)
        _run(["ip", "link", "add", va, "netns", a.ns, "type", "veth", "peer",
              "name", vb, "netns", b.ns])
        ips = (net + ".1", net + ".2")
        for ns, dev, ip in ((a.ns, va, ips[0]), (b.ns, vb, ips[1])):
            _run(["ip", "-n", ns, "addr", "add", ip + "/24", "dev", dev])
            _run(["ip", "-n", ns, "link", "set", dev, "up"])
        # the targets' host keys under their link addresses too
        with open(self.known_hosts, "a") as kh:
            kh.write("%s %s\n%s %s\n" % (ips[0], a.host_pub, ips[1], b.host_pub))
        return ips

    def write_ssh_config(self, path, known_hosts, extra="", addresses=None):
        """Write an ssh client config for all targets using known_hosts;
        `addresses` maps target names to other addresses to use (e.g. the
        far end of a link() for a config used on a target)."""
        addresses = addresses or {}
        blocks = []
        for t in self.targets:
            common = [
                "    User root",
                "    IdentityFile %s" % self.key,
                "    IdentitiesOnly yes",
                "    UserKnownHostsFile %s" % known_hosts,
                "    StrictHostKeyChecking yes",
                "    ConnectTimeout %d" % CONNECT_TIMEOUT,
            ]
            blocks.append("\n".join(
                ["Host %s" % t.name,
                 "    HostName %s" % addresses.get(t.name, t.ip),
                 "    Port 22"] + common))
            blocks.append("\n".join(
                ["Host %s-dead" % t.name, "    HostName %s" % t.unused_ip,
                 "    Port 22"] + common))
            blocks.append("\n".join(
                ["Host %s-closed" % t.name, "    HostName %s" % t.ip,
                 "    Port 2"] + common))
        Path(path).write_text(extra + "\n\n".join(blocks) + "\n")
        return Path(path)

    def make_ssh_config(self, name="unknown", known_hosts=None):
        """A second client config whose known_hosts lacks the targets' keys
        (an empty file, unless known_hosts text is given).
        Returns (config path, known_hosts path)."""
        kh = self.run_dir / ("known_hosts." + name)
        kh.write_text(known_hosts or "")
        cfg = self.write_ssh_config(self.run_dir / ("ssh_config." + name), kh)
        return cfg, kh

    # ------------------------------------------------------------ accessors

    def target(self, name_or_index=1):
        if isinstance(name_or_index, Target):
            return name_or_index
        if isinstance(name_or_index, int):
            return self.targets[name_or_index - 1]
        for t in self.targets:
            if t.name == name_or_index:
                return t
        raise KeyError(name_or_index)

    @property
    def t1(self):
        return self.targets[0]

    def new_workdir(self, name):
        """A fresh head data dir /tmp/mrc-e2e-<id>/head/<name>."""
        name = re.sub(r"[^A-Za-z0-9_.-]", "_", name)[:80]
        d = self.head_root / name
        n = 1
        while d.exists():
            n += 1
            d = self.head_root / ("%s.%d" % (name, n))
        d.mkdir(parents=True)
        return d

    # ------------------------------------------------------------ running

    def _env(self, env, isolate_home=True):
        e = dict(os.environ)
        e.pop("SSH_AUTH_SOCK", None)      # keys from the config only
        if isolate_home:
            e["HOME"] = str(self.home)    # never touch the user's ~/.ssh
        if env:
            e.update(env)
        return e

    def mrc_argv(self, *args, config=None):
        return [str(self.mrc_bin), "-F", str(config or self.ssh_config)] + \
            [str(a) for a in args]

    def _require_mrc(self):
        if not os.access(self.mrc_bin, os.X_OK):
            _fail("mrc binary not built: %s is missing (set MRC_BUILD_DIR "
                  "to the cmake build dir)" % self.mrc_bin)

    def run_mrc(self, *args, input=None, timeout=120, env=None, cwd=None,
                config=None, isolate_home=True, binary=False):
        """Run `mrc -F <ssh_config> args...` to completion; returns a
        CompletedProcess with str stdout/stderr (bytes if binary=True) and
        .elapsed (seconds). Fails the test (with stderr) on timeout.
        cwd defaults to the test's workdir; env entries are added to
        os.environ; input may be bytes or str (stdin is /dev/null if None)."""
        self._require_mrc()
        argv = self.mrc_argv(*args, config=config)
        return self._run_logged(argv, input, timeout, env, cwd, isolate_home,
                                binary, "mrc")

    def _run_logged(self, argv, input, timeout, env, cwd, isolate_home,
                    binary, tag):
        if isinstance(input, str):
            input = input.encode()
        cwd = cwd or self.default_cwd or self.head_root
        t0 = time.monotonic()
        # own process group: on timeout everything mrc started goes too
        # (a helper left holding the pipes would block communicate forever)
        p = subprocess.Popen(
            argv, cwd=str(cwd), env=self._env(env, isolate_home),
            stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            start_new_session=True)
        try:
            out, err = p.communicate(input, timeout=timeout)
        except subprocess.TimeoutExpired:
            _killpg(p)
            try:
                out, err = p.communicate(timeout=5)
            except subprocess.TimeoutExpired:
                p.kill()
                out, err = b"", b"<output lost: pipes held open>"
            cp = self._completed(argv, None, out, err, binary, t0, cwd, tag)
            _fail("timed out after %ss\n%s" % (timeout, self.describe(cp)))
        return self._completed(argv, p.returncode, out, err, binary, t0,
                               cwd, tag)

    def _completed(self, argv, rc, out, err, binary, t0, cwd, tag):
        if not binary:
            out = out.decode("utf-8", "replace")
            err = err.decode("utf-8", "replace")
        cp = subprocess.CompletedProcess(argv, rc, out, err)
        cp.elapsed = time.monotonic() - t0
        cp.cwd = cwd
        self._seq += 1
        try:
            base = self.log_dir / ("%03d-%s" % (self._seq, tag))
            Path(str(base) + ".cmd").write_text(
                "cwd=%s rc=%s elapsed=%.2fs\n%s\n" % (
                    cwd, rc, cp.elapsed, " ".join(map(shlex.quote, argv))))
            Path(str(base) + ".stderr").write_bytes(
                err if binary else err.encode())
        except OSError:
            pass
        return cp

    def popen_mrc(self, *args, env=None, cwd=None, config=None,
                  isolate_home=True, stdin=subprocess.DEVNULL):
        """Start mrc in the background (own process group). stdout/stderr
        go to files; finish it with wait_mrc(p). Killed at teardown."""
        self._require_mrc()
        argv = self.mrc_argv(*args, config=config)
        self._seq += 1
        base = self.log_dir / ("%03d-mrc-bg" % self._seq)
        out = open(str(base) + ".stdout", "w+b")
        err = open(str(base) + ".stderr", "w+b")
        cwd = cwd or self.default_cwd or self.head_root
        Path(str(base) + ".cmd").write_text(
            "cwd=%s\n%s\n" % (cwd, " ".join(map(shlex.quote, argv))))
        p = subprocess.Popen(argv, cwd=str(cwd),
                             env=self._env(env, isolate_home), stdin=stdin,
                             stdout=out, stderr=err, start_new_session=True)
        p.out_file, p.err_file, p.t0, p.argv = out, err, time.monotonic(), argv
        p.cwd = cwd
        self._popened.append(p)
        return p

    def wait_mrc(self, p, timeout=30):
        """Wait for a popen_mrc process; returns a CompletedProcess (str
        output, .elapsed from start) whose returncode is None on timeout
        (the process is then left running; teardown kills it)."""
        try:
            rc = p.wait(timeout)
        except subprocess.TimeoutExpired:
            rc = None
        p.out_file.seek(0)
        p.err_file.seek(0)
        cp = subprocess.CompletedProcess(
            p.argv, rc, p.out_file.read().decode("utf-8", "replace"),
            p.err_file.read().decode("utf-8", "replace"))
        cp.elapsed = time.monotonic() - p.t0
        cp.cwd = p.cwd
        return cp

    def ssh(self, t, cmd, input=None, timeout=60, config=None, opts=(),
            binary=False, cwd=None):
        """Plain OpenSSH to target t (a Target, an index, or any host alias
        of the config such as 't1-dead') with the harness config."""
        host = t.name if isinstance(t, Target) else \
            self.target(t).name if isinstance(t, int) else str(t)
        argv = ["ssh", "-F", str(config or self.ssh_config), "-o",
                "BatchMode=yes"] + list(opts) + [host, cmd]
        return self._run_logged(argv, input, timeout, None, cwd, False,
                                binary, "ssh")

    def target_sh(self, t, cmd, timeout=30, input=None):
        """Run `sh -c cmd` inside target t's network and mount namespaces
        (nsenter via sshd's pid): sees the target's own /tmp and /root.
        Returns a CompletedProcess (text)."""
        t = self.target(t)
        return subprocess.run(
            ["nsenter", "-t", str(t.pid), "-m", "-n", "--", "sh", "-c", cmd],
            input=input, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True, timeout=timeout)

    # ------------------------------------------------------------ inspection

    def target_pids(self, t):
        """Pids of every process of target t: those in its network namespace
        plus all descendants of its sshd."""
        t = self.target(t)
        if t.pid is None:
            return []
        return _ns_pids(_readlink("/proc/%d/ns/net" % t.pid), [t.pid])

    def target_procs(self, t, pattern):
        """[(pid, cmdline)] of target t's processes whose command line
        matches the regex pattern (excluding sshd itself)."""
        t = self.target(t)
        rx = re.compile(pattern)
        out = []
        for pid in self.target_pids(t):
            if pid == t.pid:
                continue
            c = cmdline(pid)
            if c and rx.search(c) and _alive(pid):
                out.append((pid, c))
        return out

    def target_mounts(self, t, fstype="fuse.mrc"):
        """[(pid, mount line)] for every mount of type fstype (prefix match:
        'fuse' matches fuse.*) seen in /proc/<pid>/mounts of any process of
        target t (covers private mount namespaces of the job)."""
        out = []
        for pid in self.target_pids(t):
            try:
                lines = Path("/proc/%d/mounts" % pid).read_text().splitlines()
            except OSError:
                continue
            for line in lines:
                f = line.split()
                if len(f) > 2 and (f[2] == fstype or
                                   f[2].startswith(fstype + ".")):
                    out.append((pid, line))
        return out

    def describe(self, cp, sshd_lines=15):
        """Text for an assertion message: command, rc, output tails, and
        the tail of every target's sshd log."""
        parts = ["command: %s" % " ".join(map(shlex.quote, map(str, cp.args))),
                 "cwd: %s" % getattr(cp, "cwd", "?"),
                 "exit status: %s  (elapsed %.2fs)" % (
                     cp.returncode, getattr(cp, "elapsed", -1)),
                 "--- stdout (tail) ---", tail(cp.stdout, 1500),
                 "--- stderr (tail) ---", tail(cp.stderr, 4000)]
        for t in self.targets:
            parts += ["--- sshd log of %s (tail) ---" % t.name,
                      file_tail(t.log, sshd_lines)]
        parts.append("(all logs of this harness are kept on failure in %s)"
                     % (self.build_dir / "e2e-logs" /
                        ("%s-%s" % (self.label, self.id))))
        return "\n".join(parts)

    def expect(self, cp, rc=0, what=""):
        """Assert the exit status; the message has mrc's stderr etc."""
        if cp.returncode != rc:
            _fail("%sexpected exit status %s, got %s\n%s" % (
                what + ": " if what else "", rc, cp.returncode,
                self.describe(cp)))
        return cp


def _killpg(p):
    """SIGKILL the process group p leads (made with start_new_session)."""
    try:
        os.killpg(p.pid, signal.SIGKILL)
    except OSError:
        pass


def _fail(msg):
    import pytest
    pytest.fail(msg, pytrace=False)


# --------------------------------------------------------------------------
# teardown (shared with the reaper, so it works from saved state only)

def _ns_pids(netns_link, roots):
    """Pids whose /proc/pid/ns/net is netns_link, plus descendants of roots."""
    pids = set()
    children = {}
    for pid in _pids():
        if netns_link and _readlink("/proc/%d/ns/net" % pid) == netns_link:
            pids.add(pid)
        pp = _ppid(pid)
        if pp is not None:
            children.setdefault(pp, []).append(pid)
    stack = [r for r in roots if r]
    seen = set()
    while stack:
        p = stack.pop()
        if p in seen:
            continue
        seen.add(p)
        pids.add(p)
        stack.extend(children.get(p, []))
    return sorted(p for p in pids if p != os.getpid())


def _netns_link(ns):
    p = Path("/run/netns") / ns
    try:
        st = os.stat(p)
    except OSError:
        return None
    return "net:[%d]" % st.st_ino


def _abort_fuse(pids):
    """Abort FUSE connections mounted in these processes' namespaces, so
    nothing stays stuck in D state waiting for a dead server."""
    minors = set()
    for pid in pids:
        try:
            info = Path("/proc/%d/mountinfo" % pid).read_text()
        except OSError:
            continue
        for line in info.splitlines():
            f = line.split()
            try:
                sep = f.index("-")
            except ValueError:
                continue
            if f[sep + 1].startswith("fuse") and f[2].startswith("0:"):
                minors.add(f[2].split(":")[1])
    for m in minors:
        try:
            Path("/sys/fs/fuse/connections/%s/abort" % m).write_text("1")
        except OSError:
            pass


def _teardown(hid, targets, root_pids):
    assert _ID_RE.match(hid)
    for t in targets:
        ns = str(t["ns"])
        link = _netns_link(ns)
        roots = [p for p in root_pids if p]
        for attempt in range(100):
            pids = _ns_pids(link, roots if attempt == 0 else
                            [p for p in roots if _alive(p)])
            pids = [p for p in pids if _alive(p)]
            if not pids:
                break
            if attempt == 0:
                _abort_fuse(pids)
            for p in pids:
                try:
                    os.kill(p, signal.SIGKILL)
                except OSError:
                    pass
            time.sleep(0.05)
        subprocess.run(["ip", "netns", "del", ns], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
        vh = str(t["veth_head"])
        if Path("/sys/class/net", vh).exists():
            subprocess.run(["ip", "link", "del", vh],
                           stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
    _safe_rmtree(TMP_BASE / (PREFIX + hid))
    _safe_rmtree(RUN_BASE / (PREFIX + hid))


def reap_stale():
    """Tear down harnesses whose owner process is gone (kill -9, timeout)."""
    for d in RUN_BASE.glob(PREFIX + "*"):
        hid = d.name[len(PREFIX):]
        if not _ID_RE.match(hid) or not d.is_dir():
            continue
        try:
            pid, start = (d / "owner").read_text().split()
            pid = int(pid)
        except (OSError, ValueError):
            # being created right now, or broken: only reap if old
            try:
                if time.time() - d.stat().st_mtime < 120:
                    continue
            except OSError:
                continue
            pid, start = -1, ""
        if pid > 0 and _alive(pid) and _starttime(pid) == start:
            continue
        try:
            state = json.loads((d / "state.json").read_text())
            targets = state["targets"]
        except (OSError, ValueError, KeyError):
            targets = []
        # also any namespace of ours not in the saved state
        for ns in _run(["ip", "netns", "list"], check=False).stdout.split():
            if ns.startswith("%s%s-" % (NS_PREFIX, hid)) and \
                    ns not in [x["ns"] for x in targets]:
                targets.append({"ns": ns, "veth_head": "-"})
        _teardown(hid, targets, [])


class _Lock:
    def __enter__(self):
        self.f = open(LOCK_FILE, "a")
        fcntl.flock(self.f, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc):
        fcntl.flock(self.f, fcntl.LOCK_UN)
        self.f.close()


@atexit.register
def _close_all():
    for h in list(_live):
        try:
            h.close()
        except Exception:
            pass


def leftovers(hid, ns_names=()):
    """What a closed harness left behind (empty list: nothing)."""
    out = []
    for p in (RUN_BASE / (PREFIX + hid), TMP_BASE / (PREFIX + hid)):
        if os.path.lexists(p):
            out.append("dir %s" % p)
    nslist = _run(["ip", "netns", "list"], check=False).stdout
    for ns in re.findall(r"^(\S+)", nslist, re.M):
        if ns.startswith("%s%s-" % (NS_PREFIX, hid)):
            out.append("netns %s" % ns)
    links = _run(["ip", "-o", "link"], check=False).stdout
    for name in re.findall(r"^\d+: ([^:@]+)", links, re.M):
        if name.startswith("me%s" % hid):
            out.append("link %s" % name)
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        if hid in line:
            out.append("mount %s" % line)
    for pid in _pids():
        c = cmdline(pid)
        if c and (PREFIX + hid in c or NS_PREFIX + hid in c) and \
                pid != os.getpid() and _alive(pid):
            out.append("process %d %s" % (pid, c))
    return out
