"""Issue 3 acceptance, fault injection: a target that never acknowledges an
invalidation (its mrc-target frozen with SIGSTOP, its connection still up)
delays a writer on another target by at most one lease term, and then its
lease is revoked: its mrc on the head ends with a message saying so."""

import os
import signal
import time

import pytest

pytestmark = [pytest.mark.needs_mrc, pytest.mark.targets(2)]

LEASE = 2.0

READER = r'''
import os, time
data = open("f").read()
open("ready", "w").close()
time.sleep(60)
'''


def test_silent_client_delays_writer_one_lease_then_is_revoked(harness, workdir):
    (workdir / "f").write_text("v0")
    (workdir / "reader.py").write_text(READER)
    p = harness.popen_mrc("--lease", str(LEASE), "t1", "python3", "reader.py")
    deadline = time.time() + 30
    while not (workdir / "ready").exists():
        assert p.poll() is None, harness.describe(harness.wait_mrc(p, 1))
        assert time.time() < deadline
        time.sleep(0.02)
    targets = [pid for pid, cmd in harness.target_procs("t1", r"mrc-target serve")]
    assert targets, "no mrc-target on t1"
    for pid in targets:
        os.kill(pid, signal.SIGSTOP)
    try:
        # A writer on t2: its write completes only once t1 acknowledged the
        # invalidation, or t1's lease was revoked.
        cp = harness.expect(harness.run_mrc("--lease", str(LEASE), "t2", "sh", "-c", "echo v1 > f"))
        # Startup takes well under a second; the wait for t1 at most a lease.
        assert cp.elapsed < LEASE + 2.0, "the writer waited %.1f s" % cp.elapsed
        assert cp.elapsed > LEASE * 0.8, "the writer did not wait for t1 (%.2f s)" % cp.elapsed
        r = harness.wait_mrc(p, 10)
        assert r.returncode == 255, harness.describe(r)
        assert "lease revoked" in r.stderr and "did not acknowledge" in r.stderr, harness.describe(r)
    finally:
        for pid in targets:
            try:
                os.kill(pid, signal.SIGCONT)
            except OSError:
                pass
    assert (workdir / "f").read_text() == "v1\n"
