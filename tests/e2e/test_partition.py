"""Issue 3 acceptance, partition: the target's veth goes down mid-job.
After the lease term no read returns stale data, the job gets EIO (not a
hang) once the grace period is over and is then ended, the head keeps
every write acknowledged before the cut, and mrc on the head says why it
gave up. Short lease and grace (2 s / 4 s) keep the test quick."""

import json
import subprocess
import time

import pytest

pytestmark = [pytest.mark.needs_mrc, pytest.mark.targets(1)]

LEASE, GRACE = 2.0, 4.0
# Scheduling and clock-rate slack for the bounds, s.
SLACK = 0.5

# The job logs to the target's own /root (a tmpfs of the harness that the
# test reads afterwards through nsenter, with the link still down).
JOB = r'''
import json, os, time
log = open("/root/partition.log", "w", buffering=1)
def note(**kw):
    kw["t"] = time.time()
    log.write(json.dumps(kw) + "\n")
for i in range(5):  # acknowledged writes: written, fsync'd and closed
    with open("w%d" % i, "w") as w:
        w.write("written %d" % i)
        w.flush()
        os.fsync(w.fileno())
    note(ack=i)
fd = os.open("f", os.O_RDONLY)  # kept open: reads come from the page cache
open("ready", "w").close()
while True:
    t0 = time.time()
    try:
        note(read=os.pread(fd, 100, 0).decode(), t0=t0)
    except OSError as e:
        note(err=e.errno, t0=t0)
    time.sleep(0.05)
'''


def _link(t, state):
    subprocess.run(["ip", "link", "set", t.veth_head, state], check=True)


def test_partition_gives_eio_never_stale_and_loses_no_write(harness, workdir):
    t = harness.t1
    (workdir / "f").write_text("v0")
    (workdir / "job.py").write_text(JOB)
    p = harness.popen_mrc("--lease", str(LEASE), "--grace", str(GRACE), "t1", "python3", "job.py")
    deadline = time.time() + 30
    while not (workdir / "ready").exists():
        assert p.poll() is None, harness.describe(harness.wait_mrc(p, 1))
        assert time.time() < deadline, "job not ready within 30 s"
        time.sleep(0.02)
    time.sleep(0.5)  # some reads of v0 through the warm cache
    t_cut = time.time()
    _link(t, "down")
    try:
        time.sleep(0.2)
        (workdir / "f").write_text("v1")  # the target cannot be told
        cp = harness.wait_mrc(p, LEASE + GRACE + 10)
        assert cp.returncode == 255, harness.describe(cp)
        assert "lease revoked" in cp.stderr or "no word from" in cp.stderr, harness.describe(cp)
        # The target ends the job once the grace period is over.
        assert harness_wait(lambda: not harness.target_procs(t, r"python3 job\.py"), GRACE + 10), \
            "the job still runs on t1: %s" % harness.target_procs(t, r"python3")
        log = [json.loads(line) for line in
               harness.target_sh(t, "cat /root/partition.log").stdout.splitlines() if line.strip()]
    finally:
        _link(t, "up")

    reads = [e for e in log if "read" in e]
    errors = [e for e in log if "err" in e]
    assert reads and reads[0]["read"] == "v0", log[:10]
    stale = [e for e in reads if e["read"] == "v0" and e["t"] > t_cut + LEASE + SLACK]
    assert not stale, "stale reads after the lease term: %s" % stale[:3]
    assert errors, "the job never got an error after the cut: %s" % log[-5:]
    assert all(e["err"] == 5 for e in errors), "errors other than EIO: %s" % errors[:3]
    slow = [e for e in log if "t0" in e and e["t"] - e["t0"] > GRACE + SLACK]
    assert not slow, "a read blocked past the grace period: %s" % slow[:3]
    assert errors[0]["t"] < t_cut + LEASE + GRACE + SLACK, "EIO came too late: %s" % errors[0]
    # Nothing acknowledged before the cut is lost.
    acked = [e["ack"] for e in log if "ack" in e]
    assert acked == list(range(5)), log[:6]
    for i in acked:
        assert (workdir / ("w%d" % i)).read_text() == "written %d" % i


def harness_wait(pred, timeout):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if pred():
            return True
        time.sleep(0.1)
    return pred()
