"""Issue 2 acceptance: the job's stdout and stderr stay separate.
Needs working mrc binaries."""

import pytest

pytestmark = pytest.mark.needs_mrc


def test_stdout_and_stderr_separate(harness, workdir):
    cp = harness.expect(harness.run_mrc("t1", "sh", "-c",
                                        "echo out; echo err >&2"))
    assert cp.stdout == "out\n", harness.describe(cp)
    assert "err" in cp.stderr, harness.describe(cp)
