"""Issue 2 acceptance: kill -9 of mrc leaves nothing on the target: within
5 s the job is gone and no FUSE mount is left in any of the target's mount
namespaces. Needs working mrc binaries."""

import os
import signal

import pytest

import harness as H

pytestmark = pytest.mark.needs_mrc

JOB = r"^sleep 300$"


def test_kill9_of_mrc_cleans_target(harness, workdir):
    p = harness.popen_mrc("t1", "sleep", "300")
    if not H.wait_for(lambda: harness.target_procs("t1", JOB)
                      or p.poll() is not None, 20) or p.poll() is not None:
        cp = harness.wait_mrc(p, 1)
        pytest.fail("job 'sleep 300' never ran on t1\n" + harness.describe(cp),
                    pytrace=False)
    # while it runs, the head's export is a FUSE mount in the job's
    # namespace (guards against the check below passing vacuously)
    mounts = H.wait_for(lambda: harness.target_mounts("t1", "fuse"), 5)
    assert mounts, "no FUSE mount seen on t1 while the job runs"
    os.kill(p.pid, signal.SIGKILL)
    cp = harness.wait_mrc(p, 5)
    gone = H.wait_for(lambda: not harness.target_procs("t1", JOB)
                      and not harness.target_mounts("t1", "fuse"), 5)
    assert gone, "5 s after kill -9 of mrc, t1 still has: %s %s\n" \
        "(while running: %s)\n%s" % (
            harness.target_procs("t1", JOB),
            harness.target_mounts("t1", "fuse"), mounts,
            harness.describe(cp))
    assert not any(" fuse.mrc " in line for _, line in
                   harness.target_mounts("t1", "fuse"))
