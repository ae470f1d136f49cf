"""Issue 2 acceptance: SIGINT to mrc reaches the job; mrc exits 130 and the
job is gone on the target. Needs working mrc binaries."""

import os
import signal

import pytest

import harness as H

pytestmark = pytest.mark.needs_mrc

JOB = r"^sleep 30$"


def test_sigint_forwarded(harness, workdir):
    p = harness.popen_mrc("t1", "sleep", "30")
    if not H.wait_for(lambda: harness.target_procs("t1", JOB)
                      or p.poll() is not None, 20) or p.poll() is not None:
        cp = harness.wait_mrc(p, 1)
        pytest.fail("job 'sleep 30' never ran on t1\n" + harness.describe(cp),
                    pytrace=False)
    os.kill(p.pid, signal.SIGINT)
    cp = harness.wait_mrc(p, 10)
    assert cp.returncode == 130, "mrc did not exit 130 within 10 s of " \
        "SIGINT\n" + harness.describe(cp)
    left = H.wait_for(lambda: not harness.target_procs("t1", JOB), 5)
    assert left, "job still on t1: %s\n%s" % (
        harness.target_procs("t1", JOB), harness.describe(cp))
