"""Issue 5, live migration between two nodes: real mosixd in two network
namespaces (n1 the home node, n2 the destination), `mosrun` in n1, moved
with `migrate PID 2` and `migrate PID home`.

zdtm-style workloads (tests/e2e/zdtm/zdtm.c, a CPython counter, gzip and
sort) are migrated back and forth at least three times and then check
themselves (SIGUSR2 to the deputy reaches the process, which prints PASS);
the deputy keeps the PID, holds no memory, relays stdio, signals and the
exit status. Faults: the destination killed, or its link cut, mid-transfer
leaves the process running at home; a corrupted or unsigned image is
refused by the destination and nothing runs from it. A soak: 100
migrations of the checksummed array.
"""

import hashlib
import hmac
import json
import os
import random
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pytest

from zdtm_common import build_zdtm, text, wait_for

import mosix_cluster as M

LINK_TIMEOUT_S = 4

COUNTER = """
import sys, time
i = 0
while True:
    print(i, flush=True)
    i += 1
    time.sleep(0.1)
"""


@pytest.fixture(scope="module")
def nodes(tmp_path_factory):
    M.require("mosixd", "mosrun", "migrate", "mosmon", "mosps", "mrc")
    with M.MosixCluster(step_ms=500, window=2) as c:
        c.daemon_args = ["-v"]
        # Node 2's host tree differs from home's there: a process moved to
        # it must see home's files (item 5), never these.
        c.private_dirs[2] = tmp_path_factory.mktemp("private")
        home, dest = c.one_cluster([1, 2])
        assert M.wait_for(lambda: home.ids() == [1, 2] and dest.ids() == [1, 2], 30), "the two nodes do not see each other"
        yield c, home, dest


@pytest.fixture(scope="module")
def zdtm(tmp_path_factory):
    return build_zdtm(tmp_path_factory.mktemp("zdtm"))


class Job:
    """A command run by mosrun on the home node."""

    def __init__(self, home, args, cwd, stdout, stdin=subprocess.DEVNULL, stderr=None):
        self.home = home
        self.err = open(os.path.join(str(cwd), "mosrun.err"), "w") if stderr is None else stderr
        self.p = subprocess.Popen(
            ["ip", "netns", "exec", home.ns, str(M.MosixCluster.bin("mosrun")), "--socket", str(home.socket),
             "--link-timeout", str(LINK_TIMEOUT_S)] + args,
            cwd=cwd, stdout=stdout, stdin=stdin, stderr=self.err, close_fds=True)
        wait_for(lambda: self._kids(), 10, "mosrun to start its process")
        self.pid = self._kids()[0]

    def _kids(self):
        try:
            with open("/proc/%d/task/%d/children" % (self.p.pid, self.p.pid)) as f:
                return [int(k) for k in f.read().split()]
        except FileNotFoundError:
            return []

    def migrate(self, where, check=True):
        r = subprocess.run(["ip", "netns", "exec", self.home.ns, str(M.MosixCluster.bin("migrate")), str(self.pid),
                            where], capture_output=True, text=True, timeout=120)
        if check:
            assert r.returncode == 0, "migrate %d %s: %s" % (self.pid, where, r.stderr)
        return r

    def rss_kib(self):
        with open("/proc/%d/status" % self.pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    def wait(self, timeout=120):
        return self.p.wait(timeout=timeout)


def guests(node):
    """The guest count node's mosixd reports for itself (each step)."""
    v = node.json()
    return [e for e in v["nodes"] if e["id"] == node.id][0]["guests"]


def test_counter_moves_there_and_back_three_times_and_its_deputy_passes_signals(nodes, tmp_path):
    c, home, dest = nodes
    (tmp_path / "counter.py").write_text(COUNTER)
    out = tmp_path / "out.txt"
    with open(out, "w") as f:
        job = Job(home, ["/usr/bin/python3", "counter.py"], tmp_path, f)
    wait_for(lambda: len(text(out).split()) >= 5, 20, "the counter to start")
    rss_home = job.rss_kib()
    for rnd in range(3):
        job.migrate("2")
        n = len(text(out).split())
        wait_for(lambda: len(text(out).split()) >= n + 5, 20, "the counter to count at node 2")
        # The deputy: the same PID, the child of mosrun, its memory gone.
        assert job._kids() == [job.pid]
        assert job.rss_kib() < rss_home / 4, (job.rss_kib(), rss_home)
        wait_for(lambda: guests(dest) == 1, 5, "node 2 to count its guest")
        if rnd == 0:  # there its /proc/PID/exe is python's (home's, over the home files), not mosixd's
            python = os.path.basename(os.path.realpath("/usr/bin/python3"))
            exes = []
            for p in _guest_ends(dest):
                try:
                    exes.append(os.path.basename(os.readlink("/proc/%d/exe" % p)))
                except OSError:
                    pass
            assert python in exes, exes
        job.migrate("home")
        n = len(text(out).split())
        wait_for(lambda: len(text(out).split()) >= n + 5, 20, "the counter to count at home again")
        assert job.rss_kib() > rss_home / 2
    job.migrate("2")
    time.sleep(0.5)
    # SIGTERM to the deputy ends the process there; the deputy ends alike.
    os.kill(job.pid, signal.SIGTERM)
    assert job.wait(30) == 128 + signal.SIGTERM
    nums = [int(x) for x in text(out).split()]
    assert nums == list(range(len(nums))), "a gap or a repeat: %s" % nums
    assert len(nums) >= 35, nums


def test_ctrl_c_at_the_terminal_reaches_the_process_once_at_home_and_away(nodes, tmp_path):
    """^C makes the tty send SIGINT to the whole foreground group: mosrun
    and its process (or the deputy). Once is what the process must get."""
    import pty
    import select
    c, home, dest = nodes
    prog = ("import signal, time\nn = [0]\nsignal.signal(signal.SIGINT, lambda s, f: n.__setitem__(0, n[0] + 1))\n"
            "for i in range(100):\n    print('n=%d' % n[0], flush=True)\n    time.sleep(0.1)\n")
    (tmp_path / "int.py").write_text(prog)
    pid, fd = pty.fork()
    if pid == 0:
        os.chdir(str(tmp_path))
        os.closerange(3, 65536)  # pytest's own pipes are not the job's
        os.execvp("ip", ["ip", "netns", "exec", home.ns, str(M.MosixCluster.bin("mosrun")), "--socket",
                         str(home.socket), "/usr/bin/python3", "int.py"])
    seen = bytearray()

    def read_until(want, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            r, _, _ = select.select([fd], [], [], 0.1)
            if r:
                try:
                    seen.extend(os.read(fd, 4096))
                except OSError:
                    break
            if want in seen[-200:]:
                return True
        return False

    try:
        assert read_until(b"n=0", 20), bytes(seen)
        kids = open("/proc/%d/task/%d/children" % (pid, pid)).read().split()
        job_pid = int(kids[0])
        os.write(fd, b"\x03")
        assert read_until(b"n=1", 10), bytes(seen)
        r = subprocess.run(["ip", "netns", "exec", home.ns, str(M.MosixCluster.bin("migrate")), str(job_pid), "2"],
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        assert read_until(b"n=1", 10), bytes(seen)  # its output comes through the deputy now
        os.write(fd, b"\x03")
        assert read_until(b"n=2", 10), bytes(seen)
        assert not read_until(b"n=3", 1.5), "SIGINT came twice: " + bytes(seen[-300:]).decode(errors="replace")
    finally:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        os.close(fd)


def test_exit_status_and_stdout_come_home(nodes, tmp_path):
    c, home, dest = nodes
    prog = "import sys, time\nfor i in range(30):\n    print('out', i, flush=True)\n    time.sleep(0.05)\n" \
           "sys.stderr.write('bye\\n')\nsys.exit(7)\n"
    (tmp_path / "p.py").write_text(prog)
    job = Job(home, ["/usr/bin/python3", "p.py"], tmp_path, subprocess.PIPE, stderr=subprocess.PIPE)
    time.sleep(0.3)
    job.migrate("2")
    out, err = job.p.communicate(timeout=60)
    assert job.p.returncode == 7, err
    assert out.decode().split("\n")[:-1] == ["out %d" % i for i in range(30)], out
    assert b"bye" in err, err


def in_mount_ns(pid, *cmd):
    """Runs `cmd` in the mount namespace of process `pid` (a node's host tree)."""
    return subprocess.run(["nsenter", "-t", str(pid), "-m"] + list(cmd), capture_output=True, text=True, timeout=30)


def test_a_migrated_process_reads_and_writes_its_home_nodes_files_never_the_hosts(nodes, tmp_path):
    c, home, dest = nodes
    private = c.private_dirs[2]
    (private / "data.txt").write_text("home's data\n")
    # The destination's own file at the same path, in its own tree.
    r = in_mount_ns(dest.proc.pid, "sh", "-c", 'echo "the host\'s own" > "$0/data.txt"', str(private))
    assert r.returncode == 0, r.stderr
    prog = r"""
import os, sys, time
private, go = sys.argv[1], sys.argv[2]
print("ready", flush=True)
while not os.path.exists(go):  # created at home after the move: coherence brings it here
    time.sleep(0.05)
with open(os.path.join(private, "data.txt")) as f:
    seen = f.read()
with open("/proc/self/mountinfo") as f:
    fuse = sum(1 for line in f if "mosix-home" in line)
with open(os.path.join(private, "out.txt"), "w") as f:
    f.write("saw " + seen)
    f.write("fuse mounts %d\n" % fuse)
os.mkdir(os.path.join(private, "made-there"))
print("done", flush=True)
"""
    (tmp_path / "p.py").write_text(prog)
    out = tmp_path / "out.log"
    with open(out, "w") as f:
        job = Job(home, ["/usr/bin/python3", "p.py", str(private), str(tmp_path / "go")], tmp_path, f)
    wait_for(lambda: "ready" in text(out), 30, "the script to start")
    job.migrate("2")
    ps = json.loads(subprocess.run(["ip", "netns", "exec", home.ns, str(M.MosixCluster.bin("mosps")), "--json"],
                                   capture_output=True, text=True, timeout=30).stdout)
    assert [p["where"] for p in ps["processes"] if p["pid"] == job.pid] == [dest.address], ps
    (tmp_path / "go").write_text("")
    assert job.wait(60) == 0, text(out) + text(tmp_path / "mosrun.err")
    assert "done" in text(out)
    # Its writes are on the home node, and what it read was home's.
    got = (private / "out.txt").read_text()
    assert got.startswith("saw home's data\n"), got
    fuse = int(got.split("fuse mounts")[1])
    assert fuse >= 1, got
    assert (private / "made-there").is_dir()
    # The destination's own tree is untouched.
    r = in_mount_ns(dest.proc.pid, "sh", "-c", 'cat "$0/data.txt"; ls -a "$0"', str(private))
    assert r.stdout.split("\n")[0] == "the host's own", r.stdout + r.stderr
    assert "out.txt" not in r.stdout and "made-there" not in r.stdout, r.stdout


def test_a_process_of_another_user_runs_there_as_that_user_with_its_permissions(nodes, tmp_path):
    """mosrun runs as root; its process drops to nobody (setpriv). There
    it must be nobody too: the image's credentials, and the kernel's
    permission checks on the home files (a root-only file stays closed to
    it); what it creates at home is its own."""
    c, home, dest = nodes
    d = Path(tempfile.mkdtemp(prefix="mosix-e2e-user-", dir="/tmp"))  # pytest's tmp is root's alone
    request_cleanup = lambda: shutil.rmtree(d, ignore_errors=True)
    try:
        _another_user(home, d, tmp_path)
    finally:
        request_cleanup()


def _another_user(home, d, tmp_path):
    os.chmod(d, 0o777)
    (d / "rootonly").mkdir(mode=0o755)
    (d / "rootonly" / "secret").write_text("root's\n")
    os.chmod(d / "rootonly" / "secret", 0o600)
    prog = r"""
import os, sys, time
d = sys.argv[1]
print("ready", flush=True)
while not os.path.exists(os.path.join(d, "go")):
    time.sleep(0.05)
def denied(f):
    try:
        f()
        return "allowed"
    except PermissionError:
        return "denied"
secret = denied(lambda: open(os.path.join(d, "rootonly", "secret")).read())
create = denied(lambda: open(os.path.join(d, "rootonly", "new"), "w"))
with open(os.path.join(d, "mine.txt"), "w") as f:
    f.write("uid %s gid %s groups %s secret %s create %s\n" % (
        os.getresuid(), os.getresgid(), os.getgroups(), secret, create))
os.mkdir(os.path.join(d, "mydir"))
print("done", flush=True)
"""
    (d / "p.py").write_text(prog)
    out = tmp_path / "out.log"
    with open(out, "w") as f:
        job = Job(home, ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "/usr/bin/python3",
                         str(d / "p.py"), str(d)], d, f)  # a cwd it may enter (the way home chdirs as it)
    wait_for(lambda: "ready" in text(out), 30, "the script to start")
    for where in ["2", "home", "2"]:
        job.migrate(where)
    with open("/proc/%d/status" % job.pid) as st:  # the deputy, at home: still nobody
        assert "Uid:\t65534\t65534\t65534" in st.read()
    (d / "go").write_text("")
    assert job.wait(60) == 0, text(out) + text(d / "mosrun.err")
    got = (d / "mine.txt").read_text()
    assert got == "uid (65534, 65534, 65534) gid (65534, 65534, 65534) groups [] secret denied create denied\n", got
    assert not (d / "rootonly" / "new").exists()
    for made in ["mine.txt", "mydir"]:
        st = os.stat(d / made)
        assert (st.st_uid, st.st_gid) == (65534, 65534), (made, st.st_uid, st.st_gid)


def test_input_it_had_not_read_there_comes_home_with_it(nodes, tmp_path):
    """All of its stdin is sent on as it comes; a slow reader leaves most
    of it unread in its pipe there. On the way home those bytes come back
    and are read first: nothing lost, nothing out of order, then EOF."""
    c, home, dest = nodes
    prog = r"""
import os, sys, time
print("ready", flush=True)
got = []
while True:
    b = os.read(0, 4)
    if not b:
        break
    got.append(b.decode())
    time.sleep(0.02)
want = "".join("%03d\n" % i for i in range(200))
print("PASS" if "".join(got) == want else "FAIL %d bytes: %r" % (len("".join(got)), "".join(got)[-40:]), flush=True)
"""
    (tmp_path / "p.py").write_text(prog)
    out = tmp_path / "out.txt"
    with open(out, "w") as f:
        job = Job(home, ["/usr/bin/python3", "p.py"], tmp_path, f, stdin=subprocess.PIPE)
    wait_for(lambda: "ready" in text(out), 30, "the reader to start")
    job.migrate("2")
    job.p.stdin.write("".join("%03d\n" % i for i in range(200)).encode())
    job.p.stdin.close()  # EOF comes after all of it, wherever it is read
    time.sleep(0.5)      # about 25 records read there; the rest waits in its pipe
    job.migrate("home")
    time.sleep(0.5)
    job.migrate("2")     # its stdin is now the FIFO mosrun feeds: relayed as any pipe
    time.sleep(0.3)
    job.migrate("home")
    assert job.wait(60) == 0, text(out) + text(tmp_path / "mosrun.err")
    assert text(out).split("\n")[1] == "PASS", text(out)


@pytest.mark.parametrize("mode", ["alarm", "reader", "array", "shared", "stdin", "recurse"])
def test_zdtm_workload_migrated_back_and_forth(nodes, zdtm, tmp_path, mode):
    c, home, dest = nodes
    args = [mode]
    if mode == "reader":
        data = tmp_path / "data.bin"
        data.write_bytes(bytes(i * 131 % 251 for i in range(1 << 20)))
        args.append(str(data))
    if mode == "array":
        args.append("1024")  # MiB
    out = tmp_path / "out.txt"
    with open(out, "w") as f:
        job = Job(home, [zdtm] + args, tmp_path, f, stdin=subprocess.PIPE if mode == "stdin" else subprocess.DEVNULL,
                  stderr=subprocess.STDOUT if mode == "shared" else None)
    wait_for(lambda: "ready" in text(out), 60, mode + " to be ready")
    for where in ["2", "home", "2", "home", "2"]:
        job.migrate(where)
        time.sleep(0.3)
    if mode == "stdin":
        job.p.stdin.write(b"go\n")  # to the deputy's stdin: relayed to node 2
        job.p.stdin.close()
    else:
        os.kill(job.pid, signal.SIGUSR2)  # to the deputy: the process gets it
    assert job.wait(120) == 0, text(out)[-500:] + text(tmp_path / "mosrun.err")
    got = text(out)
    assert got.rstrip().endswith("PASS"), got[-500:]
    body = got.split()
    if mode == "alarm":
        # Never doubled nor repeated (a tick restored twice would show again).
        # A number may be skipped: the loop prints after pause(), and a
        # print that takes longer than the 100 ms period (its stdout is a
        # file of the home node's, over FUSE there; a loaded machine) sees
        # two ticks at once - the workload's own count is the verdict.
        ticks = [int(t) for k, t in zip(body, body[1:]) if k == "tick"]
        assert all(a < b for a, b in zip(ticks, ticks[1:])) and len(ticks) > 10, ticks
        assert ticks[-1] - ticks[0] + 1 - len(ticks) <= 3, ("more than 3 ticks skipped", ticks)
    if mode == "shared":
        nums = [int(t) for k, t in zip(body, body[1:]) if k == "line"]
        assert nums == list(range(len(nums))) and len(nums) > 20, nums


def test_gzip_and_sort_migrated_mid_run_give_the_same_bytes(nodes, tmp_path):
    """gzip -c writing to mosrun's stdout (a pipe: relayed) and sort writing
    a file, each moved there and back three times mid-run: their output is
    byte-identical to unmigrated runs'."""
    c, home, dest = nodes
    src = tmp_path / "in.bin"
    with open(src, "wb") as f:
        for i in range(300000):
            f.write(b"line %d of some text that gzip can compress well\n" % i)
        f.write(os.urandom(64 << 20))
    want_gz = subprocess.run(["gzip", "-c", str(src)], stdout=subprocess.PIPE, check=True).stdout
    lines = tmp_path / "lines.txt"
    rnd = random.Random(7)
    with open(lines, "w") as f:
        for i in range(3_000_000):
            f.write("%016x %d\n" % (rnd.getrandbits(64), i))
    want_sort = subprocess.run(["sort", "--parallel=1", str(lines)], stdout=subprocess.PIPE, check=True).stdout

    gz = Job(home, ["gzip", "-c", str(src)], tmp_path, subprocess.PIPE)
    got = []
    reader = threading.Thread(target=lambda: got.append(gz.p.stdout.read()))
    reader.start()
    sorted_out = tmp_path / "sorted.txt"
    with open(sorted_out, "wb") as f:
        so = Job(home, ["sort", "--parallel=1", "-S", "64M", str(lines)], tmp_path, f)
    for where in ["2", "home", "2", "home", "2", "home"]:
        for job in (gz, so):
            if job.p.poll() is None:
                r = job.migrate(where, check=False)
                assert (r.returncode == 0 or job.p.poll() is not None or "home already" in r.stderr or
                        "has exited" in r.stderr), r.stderr
        time.sleep(0.2)
    assert gz.wait(300) == 0
    reader.join(60)
    assert so.wait(300) == 0
    assert got and len(got[0]) == len(want_gz) and got[0] == want_gz, "gzip output differs"
    assert sorted_out.read_bytes() == want_sort, "sort output differs"


def test_what_cannot_move_is_refused_and_runs_on(nodes, tmp_path):
    c, home, dest = nodes
    prog = COUNTER.replace("i = 0", "import socket\ns = socket.socket()\ni = 0")
    (tmp_path / "sock.py").write_text(prog)
    out = tmp_path / "out.txt"
    with open(out, "w") as f:
        job = Job(home, ["/usr/bin/python3", "sock.py"], tmp_path, f)
    wait_for(lambda: len(text(out).split()) >= 3, 20, "the program to start")
    r = job.migrate("2", check=False)
    assert r.returncode == 1 and "cannot move: fd 3 is a socket" in r.stderr, r.stderr
    r = job.migrate("9", check=False)
    assert r.returncode == 1 and "node 9 is not known" in r.stderr, r.stderr
    r = job.migrate("home", check=False)
    assert r.returncode == 1 and "home already" in r.stderr, r.stderr
    n = len(text(out).split())
    wait_for(lambda: len(text(out).split()) >= n + 5, 20, "the program to run on")
    assert guests(dest) == 0
    os.kill(job.pid, signal.SIGTERM)
    assert job.wait(30) == 128 + signal.SIGTERM


def mosps(home):
    r = subprocess.run(["ip", "netns", "exec", home.ns, str(M.MosixCluster.bin("mosps")), "--json"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    return {p["pid"]: p for p in json.loads(r.stdout)["processes"]}


def test_freeze_continue_and_mosps(nodes, tmp_path):
    c, home, dest = nodes
    (tmp_path / "counter.py").write_text(COUNTER)
    out = tmp_path / "out.txt"
    with open(out, "w") as f:
        job = Job(home, ["--freeze-dir", str(tmp_path), "/usr/bin/python3", "counter.py"], tmp_path, f)
    prog = COUNTER.replace("i = 0", "import socket\ns = socket.socket()\ni = 0")
    (tmp_path / "sock.py").write_text(prog)
    with open(tmp_path / "sock.txt", "w") as f:
        stuck = Job(home, ["/usr/bin/python3", "sock.py"], tmp_path, f)
    wait_for(lambda: len(text(out).split()) >= 5, 20, "the counter to start")
    ps = mosps(home)
    assert ps[job.pid]["where"] == "home" and not ps[job.pid]["frozen"] and ps[job.pid]["moves"] == 0, ps
    assert ps[job.pid]["command"] == "/usr/bin/python3 counter.py", ps
    assert "cannot_move" not in ps[job.pid], ps
    assert ps[stuck.pid]["cannot_move"].startswith("cannot move: fd 3 is a socket"), ps
    table = subprocess.run(["ip", "netns", "exec", home.ns, str(M.MosixCluster.bin("mosps"))], capture_output=True,
                           text=True).stdout
    assert "(cannot move: fd 3 is a socket" in table and str(job.pid) in table, table
    rss = job.rss_kib()

    # Frozen: its image on disk, its memory gone, nothing runs; a signal waits.
    job.migrate("freeze")
    image = tmp_path / ("mosix-freeze-%d.img" % job.pid)
    assert image.exists()
    assert job.rss_kib() < rss / 4, (job.rss_kib(), rss)
    n = len(text(out).split())
    time.sleep(1)
    assert len(text(out).split()) == n, "a frozen process ran"
    assert mosps(home)[job.pid]["frozen"]
    r = job.migrate("2", check=False)
    assert r.returncode == 1 and "frozen" in r.stderr, r.stderr
    job.migrate("continue")
    assert not image.exists()
    wait_for(lambda: len(text(out).split()) >= n + 5, 20, "the counter to go on")

    # Moves are counted; freezing works again after a trip.
    job.migrate("2")
    ps = mosps(home)[job.pid]
    assert ps["where"] == dest.address and ps["moves"] == 1, ps
    job.migrate("home")
    assert mosps(home)[job.pid]["moves"] == 2
    job.migrate("freeze")
    os.kill(job.pid, signal.SIGTERM)
    time.sleep(0.5)
    assert job.p.poll() is None, "a frozen process took a signal before continue"
    job.migrate("continue")
    assert job.wait(30) == 128 + signal.SIGTERM
    nums = [int(x) for x in text(out).split()]
    assert nums == list(range(len(nums))), "a gap or a repeat: %s" % nums
    os.kill(stuck.pid, signal.SIGKILL)
    stuck.wait(30)


def test_a_blocked_cluster_or_a_node_that_left_takes_no_migration(zdtm, tmp_path):
    M.require("mosixd", "mosrun", "migrate", "mosctl")
    with M.MosixCluster(step_ms=500, window=2) as c:
        (home,), (dest,) = c.two_clusters([1], [2])
        assert M.wait_for(lambda: home.ids() == [1, 2] and dest.ids() == [1, 2], 30), "the clusters do not meet"

        def mosctl(*args):
            r = subprocess.run([str(M.MosixCluster.bin("mosctl")), "--socket", str(dest.socket)] + list(args),
                               capture_output=True, text=True, timeout=30)
            assert r.returncode == 0, r.stderr

        out = tmp_path / "out.txt"
        with open(out, "w") as f:
            job = Job(home, [zdtm, "array", "16"], tmp_path, f)
        wait_for(lambda: "ready" in text(out), 30, "the array")
        mosctl("block", "1")
        r = job.migrate("2", check=False)
        assert r.returncode == 1 and "cluster 1 is blocked here (mosctl block)" in r.stderr, r.stderr
        mosctl("unblock", "1")
        mosctl("leave")
        r = job.migrate("2", check=False)
        assert r.returncode == 1 and "has left its cluster" in r.stderr, r.stderr
        mosctl("join")
        job.migrate("2")  # across clusters, once allowed
        job.migrate("home")
        os.kill(job.pid, signal.SIGUSR2)
        assert job.wait(60) == 0, text(out)
        assert text(out).rstrip().endswith("PASS")


def _guest_ends(dest):
    """Processes in the destination's namespace other than its mosixd."""
    pids = subprocess.run(["ip", "netns", "pids", dest.ns], capture_output=True, text=True).stdout.split()
    return [int(p) for p in pids if int(p) != dest.proc.pid]


@pytest.mark.parametrize("fault", ["destination_killed", "link_cut"])
def test_a_fault_mid_transfer_leaves_the_process_at_home(nodes, zdtm, tmp_path, fault):
    c, home, dest = nodes
    out = tmp_path / "out.txt"
    with open(out, "w") as f:
        job = Job(home, [zdtm, "array", "2048"], tmp_path, f)
    wait_for(lambda: "ready" in text(out), 120, "the array")
    result = {}
    t = threading.Thread(target=lambda: result.setdefault("r", job.migrate("2", check=False)))
    t0 = time.monotonic()
    t.start()
    wait_for(lambda: _guest_ends(dest), 10, "the transfer to start")
    time.sleep(0.2)
    if fault == "destination_killed":
        for p in [dest.proc.pid] + _guest_ends(dest):
            os.kill(p, signal.SIGKILL)
    else:
        subprocess.run(["ip", "-n", dest.ns, "link", "set", "eth0", "down"], check=True)
    t.join(LINK_TIMEOUT_S * 3 + 30)
    took = time.monotonic() - t0
    r = result["r"]
    print("%s: migrate said %r after %.1f s" % (fault, r.stderr.strip(), took))
    try:
        assert r.returncode == 1, r.stderr
        assert "cannot migrate" in r.stderr, r.stderr
        assert took < LINK_TIMEOUT_S * 3 + 10, took
        # It runs on at home, whole: the checksum holds.
        assert job.rss_kib() > 1 << 20
        os.kill(job.pid, signal.SIGUSR2)
        assert job.wait(60) == 0, text(out)
        assert text(out).rstrip().endswith("PASS")
    finally:
        if fault == "destination_killed":
            dest.proc.wait()
            c.start(dest)
        else:
            subprocess.run(["ip", "-n", dest.ns, "link", "set", "eth0", "up"], check=True)
    # The guest end took mosrun's link timeout: it gives up as soon.
    wait_for(lambda: not _guest_ends(dest), LINK_TIMEOUT_S * 3 + 10, "the half-built guest to be gone")


def test_a_link_cut_between_commit_and_running_never_runs_it_on_both_nodes(nodes, zdtm, tmp_path):
    """The destination has released the process but its `running` never
    comes home: the link is cut in between (the guest end holds `running`
    back by MOSIX_FAULT_HOLD_RUNNING_MS, so the test can cut it there).
    The home end keeps the original frozen until the copy there must have
    been killed; the two copies stamp one shared file (--local-files: the
    copy there writes the host's file directly), so the file shows whether
    they ever ran at once."""
    c, home, dest = nodes
    dest.proc.terminate()
    dest.proc.wait()
    c.node_env[2] = {"MOSIX_FAULT_HOLD_RUNNING_MS": "3000"}
    c.start(dest)
    stamps = tmp_path / "stamps"
    out = tmp_path / "out.txt"
    try:
        with open(out, "w") as f:
            job = Job(home, ["--local-files", zdtm, "stamp", str(stamps)], tmp_path, f)
        wait_for(lambda: "ready" in text(out), 30, "the stamps")

        def stamped():
            return [tuple(int(x) for x in line.split()) for line in text(stamps).splitlines() if line]

        result = {}
        t = threading.Thread(target=lambda: result.setdefault("r", job.migrate("2", check=False)))
        t0 = time.monotonic()
        t.start()
        wait_for(lambda: any(pid != job.pid for pid, _ in stamped()), 60, "the copy to run there")
        subprocess.run(["ip", "-n", dest.ns, "link", "set", "eth0", "down"], check=True)
        t.join(LINK_TIMEOUT_S * 4 + 30)
        took = time.monotonic() - t0
        r = result["r"]
        print("migrate said %r after %.1f s" % (r.stderr.strip(), took))
        assert r.returncode == 1 and "cannot migrate" in r.stderr, r.stderr
        # Home went on: it stamps again.
        wait_for(lambda: stamped()[-1][0] == job.pid, 10, "the original to go on")
        wait_for(lambda: not _guest_ends(dest), LINK_TIMEOUT_S * 3 + 10, "the copy there to be killed")
        time.sleep(0.5)
        seen = stamped()
        there = [i for i, (pid, _) in enumerate(seen) if pid != job.pid]
        back = [i for i, (pid, _) in enumerate(seen) if pid == job.pid and i > there[0]]
        print("%d stamps there (%d..%d), home again from stamp %d" % (len(there), there[0], there[-1], back[0]))
        overlap = [i for i in there if i > back[0]]
        assert not overlap, "both copies ran at once: %d stamps there after home went on at stamp %d" % (
            len(overlap), back[0])
        os.kill(job.pid, signal.SIGUSR2)
        assert job.wait(60) == 0, text(out)
        assert text(out).rstrip().endswith("PASS")
    finally:
        subprocess.run(["ip", "-n", dest.ns, "link", "set", "eth0", "up"], check=True)
        dest.proc.terminate()
        dest.proc.wait()
        c.node_env.pop(2, None)
        c.start(dest)
        wait_for(lambda: home.ids() == [1, 2] and dest.ids() == [1, 2], 30, "the two nodes to see each other again")


def _frame(t, payload=b""):
    return struct.pack("<II", t, len(payload)) + payload


def _read_frame(s):
    h = b""
    while len(h) < 8:
        chunk = s.recv(8 - len(h))
        if not chunk:
            return None, None
        h += chunk
    t, n = struct.unpack("<II", h)
    p = b""
    while len(p) < n:
        p += s.recv(n - len(p))
    return t, p


def _send_image(dest, image, key):
    """Plays the home end by hand: hello, auth with `key`, the image; returns
    the destination's answer (frame type, payload)."""
    s = socket.create_connection((dest.ip, M.PORT), timeout=20)
    try:
        t, hello = _read_frame(s)
        assert t == 1 and hello.startswith(b"MOSIX-MIGRATE 1\n"), (t, hello)
        s.sendall(_frame(2, hmac.new(key.encode(), hello, hashlib.sha256).digest()))
        for i in range(0, len(image), 1 << 20):
            s.sendall(_frame(3, image[i:i + (1 << 20)]))
        s.sendall(_frame(3))
        return _read_frame(s)
    except (BrokenPipeError, ConnectionResetError):
        return None, None
    finally:
        s.close()


def test_a_corrupted_unsigned_or_unrunnable_image_is_refused(nodes, tmp_path):
    c, home, dest = nodes
    (tmp_path / "counter.py").write_text(COUNTER)
    out = tmp_path / "out.txt"
    with open(out, "w") as f:
        job = Job(home, ["-C", str(tmp_path / "ck"), "/usr/bin/python3", "counter.py"], tmp_path, f)
    wait_for(lambda: len(text(out).split()) >= 3, 20, "the counter to start")
    job.migrate("checkpoint")
    os.kill(job.pid, signal.SIGKILL)
    job.wait(30)
    image = bytearray((tmp_path / "ck.1").read_bytes())
    image[len(image) // 2] ^= 0x5A
    n = len(text(out).split())
    t, why = _send_image(dest, bytes(image), M.KEY)
    assert t == 5, (t, why)  # an error frame, naming the cause
    assert b"image:" in why or b"cannot restore" in why, why
    # An image that uses a CPU feature this machine lacks (bit 63: none
    # has it; HEADER.cpu_features is at stream offset 8 + 16 + 20): refused
    # before anything is built, with the reason.
    lacking = bytearray((tmp_path / "ck.1").read_bytes())
    lacking[44 + 7] |= 0x80
    t, why = _send_image(dest, bytes(lacking), M.KEY)
    assert t == 5 and b"lacks features the image may use (mask 0x8000000000000000)" in why, (t, why)
    t, why = _send_image(dest, bytes((tmp_path / "ck.1").read_bytes()), "not-the-cluster-key-0123456789")
    assert t is None, (t, why)  # the connection is dropped: nothing was restored
    time.sleep(1)
    assert len(text(out).split()) == n, "something ran from a refused image"
    assert not _guest_ends(dest)
    assert "not signed with the cluster key" in dest.log.read_text()


def test_soak_100_migrations_of_the_checksummed_array(nodes, zdtm, tmp_path):
    c, home, dest = nodes
    out = tmp_path / "out.txt"
    with open(out, "w") as f:
        job = Job(home, [zdtm, "array", "64"], tmp_path, f)
    wait_for(lambda: "ready" in text(out), 60, "the array")
    t0 = time.monotonic()
    for i in range(100):
        job.migrate("2" if i % 2 == 0 else "home")
    took = time.monotonic() - t0
    print("100 migrations of 64 MiB in %.1f s" % took)
    os.kill(job.pid, signal.SIGUSR2)
    assert job.wait(60) == 0, text(out)
    assert text(out).rstrip().endswith("PASS")
