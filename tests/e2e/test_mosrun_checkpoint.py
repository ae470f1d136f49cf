"""Issue 5, checkpoint and recovery (zdtm style): a CPython counter printing
every 0.1 s through sleep runs under `mosrun -C`; `migrate PID checkpoint`
writes FILE.1 while it runs on; it is killed; `mosrun -R FILE.1` brings it
back, and it carries on from the checkpoint: its output file (a shared
offset, restored) reads 0, 1, 2, ... without a gap or a repeat. Also:
what cannot move is refused with the reason, a damaged image is refused
and nothing runs from it."""

import os
import random
import signal
import subprocess
import time

import pytest

from zdtm_common import build_zdtm, text, wait_for

pytestmark = [pytest.mark.needs_mrc, pytest.mark.targets(0)]

COUNTER = """
import sys, time
i = 0
while True:
    print(i, flush=True)
    i += 1
    time.sleep(0.1)
"""


def tool(name):
    return os.path.join(os.environ["MRC_BUILD_DIR"], "bin", name)


def lines(path):
    try:
        return path.read_text().split()
    except FileNotFoundError:
        return []


def child_of(pid):
    with open("/proc/%d/task/%d/children" % (pid, pid)) as f:
        kids = f.read().split()
    assert len(kids) == 1, kids
    return int(kids[0])


def start(args, tmp_path, out):
    return subprocess.Popen([tool("mosrun")] + args, cwd=tmp_path, stdout=out,
                            stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, close_fds=True)


def test_checkpoint_kill_recover_carries_on(tmp_path):
    (tmp_path / "counter.py").write_text(COUNTER)
    out = tmp_path / "out.txt"
    ck = tmp_path / "ck"
    with open(out, "w") as f:
        m = start(["-C", str(ck), "/usr/bin/python3", "counter.py"], tmp_path, f)
    wait_for(lambda: len(lines(out)) >= 5, 20, "the counter to start")
    py = child_of(m.pid)
    cp = subprocess.run([tool("migrate"), str(py), "checkpoint"], capture_output=True, text=True)
    assert cp.returncode == 0, cp.stderr
    wait_for(lambda: (tmp_path / "ck.1").exists(), 20, "ck.1")
    at_checkpoint = len(lines(out))
    wait_for(lambda: len(lines(out)) >= at_checkpoint + 5, 20, "the counter to run on after the checkpoint")
    os.kill(py, signal.SIGKILL)
    assert m.wait(timeout=20) == 128 + signal.SIGKILL, m.stderr.read()
    before_kill = len(lines(out))

    r = start(["-R", str(ck) + ".1"], tmp_path, subprocess.DEVNULL)
    # It rewrites from the checkpoint's offset on, then goes past the kill.
    wait_for(lambda: len(lines(out)) >= before_kill + 10, 30, "the recovered counter to pass the kill")
    r.send_signal(signal.SIGTERM)  # passed on to the process
    assert r.wait(timeout=20) == 128 + signal.SIGTERM, r.stderr.read()
    got = lines(out)
    assert got == [str(i) for i in range(len(got))], got


def test_refuses_what_cannot_move_and_the_process_runs_on(tmp_path):
    prog = COUNTER.replace("i = 0", "import socket\ns = socket.socket()\ni = 0")
    (tmp_path / "sock.py").write_text(prog)
    out = tmp_path / "out.txt"
    with open(out, "w") as f:
        m = start(["-C", str(tmp_path / "ck"), "/usr/bin/python3", "sock.py"], tmp_path, f)
    wait_for(lambda: len(lines(out)) >= 3, 20, "the program to start")
    py = child_of(m.pid)
    r = subprocess.run([tool("migrate"), str(py), "checkpoint"], capture_output=True, text=True)
    assert r.returncode == 1 and "cannot move: fd 3 is a socket" in r.stderr, (r.returncode, r.stderr)
    n = len(lines(out))
    wait_for(lambda: len(lines(out)) >= n + 5, 20, "the program to run on")
    m.send_signal(signal.SIGTERM)
    m.wait(timeout=20)
    assert not (tmp_path / "ck.1").exists()
    assert not (tmp_path / "ck.1.part").exists()


def test_a_damaged_checkpoint_is_refused(tmp_path):
    (tmp_path / "counter.py").write_text(COUNTER)
    out = tmp_path / "out.txt"
    with open(out, "w") as f:
        m = start(["-C", str(tmp_path / "ck"), "/usr/bin/python3", "counter.py"], tmp_path, f)
    wait_for(lambda: len(lines(out)) >= 3, 20, "the counter to start")
    subprocess.run([tool("migrate"), str(child_of(m.pid)), "checkpoint"], check=True)
    wait_for(lambda: (tmp_path / "ck.1").exists(), 20, "ck.1")
    m.send_signal(signal.SIGTERM)
    m.wait(timeout=20)
    data = bytearray((tmp_path / "ck.1").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (tmp_path / "bad").write_bytes(data)
    n = len(lines(out))
    cp = subprocess.run([tool("mosrun"), "-R", str(tmp_path / "bad")], cwd=tmp_path, capture_output=True,
                        text=True, timeout=60)
    assert cp.returncode == 255, cp.stderr
    assert "cannot recover" in cp.stderr and "image: " in cp.stderr, cp.stderr
    time.sleep(0.5)
    assert len(lines(out)) == n  # nothing ran from it


def test_migrate_names_a_process_mosrun_did_not_start():
    cp = subprocess.run([tool("migrate"), str(os.getpid()), "checkpoint"], capture_output=True, text=True)
    assert cp.returncode == 1
    assert "does not run under mosrun" in cp.stderr, cp.stderr
    gone = subprocess.run([tool("migrate"), "4194304", "checkpoint"], capture_output=True, text=True)
    assert gone.returncode == 1 and "no process 4194304" in gone.stderr, gone.stderr


@pytest.fixture(scope="module")
def zdtm(tmp_path_factory):
    return build_zdtm(tmp_path_factory.mktemp("zdtm"))


@pytest.mark.parametrize("mode", ["alarm", "reader", "array", "shared", "stdin", "recurse"])
def test_zdtm_workload_checkpointed_killed_recovered(zdtm, tmp_path, mode):
    args = [mode]
    if mode == "reader":
        data = tmp_path / "data.bin"
        data.write_bytes(bytes(i * 131 % 251 for i in range(1 << 20)))
        args.append(str(data))
    if mode == "array":
        args.append("64")  # MiB
    out = tmp_path / "out.txt"
    ck = tmp_path / "ck"
    with open(out, "w") as f:
        m = subprocess.Popen([tool("mosrun"), "-C", str(ck), zdtm] + args, cwd=tmp_path, stdout=f,
                             stderr=subprocess.STDOUT, stdin=subprocess.PIPE, close_fds=True)
    wait_for(lambda: "ready" in text(out), 30, mode + " to be ready")
    time.sleep(0.3)
    pid = child_of(m.pid)
    subprocess.run([tool("migrate"), str(pid), "checkpoint"], check=True)
    wait_for(lambda: (tmp_path / "ck.1").exists(), 30, "ck.1")
    time.sleep(0.3)
    before_kill = text(out)
    os.kill(pid, signal.SIGKILL)
    assert m.wait(timeout=20) == 128 + signal.SIGKILL

    # stdin was /dev/null; the recovered process reads mosrun's (relayed)
    r = subprocess.Popen([tool("mosrun"), "-R", str(ck) + ".1"], cwd=tmp_path, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, stdin=subprocess.PIPE, close_fds=True)
    time.sleep(0.8)
    if mode == "stdin":
        r.stdin.write(b"go\n")  # it was caught inside read(0): the read is made again
        r.stdin.close()
    else:
        os.kill(child_of(r.pid), signal.SIGUSR2)
    assert r.wait(timeout=60) == 0, r.stderr.read().decode() + text(out)
    got = text(out)
    assert got.rstrip().endswith("PASS"), got[-500:]
    body = got.split()
    if mode == "alarm":
        ticks = [int(t) for k, t in zip(body, body[1:]) if k == "tick"]
        assert ticks == list(range(ticks[0], ticks[0] + len(ticks))), ticks
        killed_at = max([int(t) for k, t in zip(before_kill.split(), before_kill.split()[1:]) if k == "tick"])
        assert ticks[-1] > killed_at, (ticks, killed_at)  # the timer went on firing after recovery
    if mode == "shared":
        nums = [int(t) for k, t in zip(body, body[1:]) if k == "line"]
        assert nums == list(range(len(nums))) and len(nums) > 20, nums  # one offset for fd 1 and 2


def test_gzip_checkpointed_mid_run_gives_the_same_bytes(tmp_path):
    """gzip -c of a large file, checkpointed mid-run, killed and recovered:
    its output is byte-identical to an unmigrated run's."""
    src = tmp_path / "in.bin"
    with open(src, "wb") as f:  # half text (compresses), half random
        for i in range(150000):
            f.write(b"line %d of some text that gzip can compress well\n" % i)
        f.write(os.urandom(48 << 20))
    want = subprocess.run(["gzip", "-c", str(src)], stdout=subprocess.PIPE, check=True).stdout
    out = tmp_path / "out.gz"
    ck = tmp_path / "ck"
    with open(out, "wb") as f:
        m = subprocess.Popen([tool("mosrun"), "-C", str(ck), "gzip", "-c", str(src)], cwd=tmp_path, stdout=f,
                             stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, close_fds=True)
    wait_for(lambda: out.stat().st_size > 1 << 20, 60, "gzip to be under way")
    pid = child_of(m.pid)
    subprocess.run([tool("migrate"), str(pid), "checkpoint"], check=True)
    wait_for(lambda: (tmp_path / "ck.1").exists(), 60, "ck.1")
    os.kill(pid, signal.SIGKILL)
    m.wait(timeout=20)
    if m.returncode == 0:
        pytest.fail("gzip finished before it could be killed; make the input larger")
    r = subprocess.run([tool("mosrun"), "-R", str(ck) + ".1"], cwd=tmp_path, stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE, timeout=300)
    assert r.returncode == 0, r.stderr.decode()
    got = out.read_bytes()
    assert len(got) == len(want) and got == want, "recovered gzip output differs (%d vs %d bytes)" % (
        len(got), len(want))


def test_sort_checkpointed_mid_run_gives_the_same_bytes(tmp_path):
    """sort of a large file (one thread: GNU sort's helper threads could
    not move), checkpointed mid-run, killed and recovered: its output is
    byte-identical to an unmigrated run's."""
    src = tmp_path / "lines.txt"
    rnd = random.Random(7)
    with open(src, "w") as f:
        for i in range(4_000_000):
            f.write("%016x %d\n" % (rnd.getrandbits(64), i))
    want = subprocess.run(["sort", "--parallel=1", str(src)], stdout=subprocess.PIPE, check=True).stdout
    out = tmp_path / "sorted.txt"
    ck = tmp_path / "ck"
    with open(out, "wb") as f:
        m = subprocess.Popen([tool("mosrun"), "-C", str(ck), "sort", "--parallel=1", str(src)], cwd=tmp_path,
                             stdout=f, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, close_fds=True)
    time.sleep(0.5)  # reading and sorting; nothing written yet
    pid = child_of(m.pid)
    subprocess.run([tool("migrate"), str(pid), "checkpoint"], check=True)
    wait_for(lambda: (tmp_path / "ck.1").exists(), 60, "ck.1")
    os.kill(pid, signal.SIGKILL)
    m.wait(timeout=20)
    if m.returncode == 0:
        pytest.fail("sort finished before it could be killed; make the input larger")
    r = subprocess.run([tool("mosrun"), "-R", str(ck) + ".1"], cwd=tmp_path, stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE, timeout=300)
    assert r.returncode == 0, r.stderr.decode()
    assert out.read_bytes() == want, "recovered sort output differs"
