"""A program a job wrote on the target runs on the head as soon as mrc
returns, and while the job runs on: the file service keeps no descriptor
of it open for writing (execve would fail with ETXTBSY, "Text file busy").
Found by the c-build example in CI. Needs working mrc binaries."""

import subprocess
import time

import pytest

pytestmark = pytest.mark.needs_mrc


def run_here(path):
    """Runs `path` on the head; execve's error (ETXTBSY) as rc 126."""
    try:
        return subprocess.run([str(path)], capture_output=True, text=True, timeout=30)
    except OSError as e:
        return subprocess.CompletedProcess([str(path)], 126, "", str(e))


@pytest.mark.parametrize("how", ["create", "overwrite"])
def test_runs_on_head_right_after_mrc(harness, workdir, how):
    prog = workdir / "prog"
    if how == "overwrite":
        # An existing file is opened by the kernel without a request
        # (no_open): the head writes through a descriptor of its own.
        prog.write_text("#!/bin/sh\nexit 3\n")
        prog.chmod(0o755)
    for i in range(5):
        cp = harness.expect(harness.run_mrc(
            "t1", "sh", "-c",
            "printf '#!/bin/sh\\necho run %d\\n' > prog; chmod 755 prog" % i))
        got = run_here(prog)
        assert got.returncode == 0 and got.stdout == "run %d\n" % i, (
            "round %d: rc %d, stdout %r, stderr %r\n%s"
            % (i, got.returncode, got.stdout, got.stderr, harness.describe(cp)))


def test_runs_on_head_while_job_goes_on(harness, workdir):
    prog = workdir / "prog"
    prog.write_text("#!/bin/sh\nexit 3\n")
    prog.chmod(0o755)
    p = harness.popen_mrc(
        "t1", "sh", "-c",
        "printf '#!/bin/sh\\necho fresh\\n' > prog; touch written; sleep 6")
    try:
        deadline = time.monotonic() + 20
        while not (workdir / "written").exists():
            assert p.poll() is None, "the job ended early\n" + harness.describe(harness.wait_mrc(p, 0))
            assert time.monotonic() < deadline, "the job never wrote prog"
            time.sleep(0.05)
        # The head's write descriptor closes after a second unused.
        deadline = time.monotonic() + 5
        while True:
            got = run_here(prog)
            if got.returncode == 0 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert got.returncode == 0 and got.stdout == "fresh\n", (
            "while the job runs: rc %d, stdout %r, stderr %r"
            % (got.returncode, got.stdout, got.stderr))
    finally:
        p.kill()
        p.wait()
