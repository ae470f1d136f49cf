"""Issue 2 acceptance: mrc exits with the job's status, 128+N on signal N.
Needs working mrc binaries."""

import pytest

pytestmark = pytest.mark.needs_mrc


@pytest.mark.parametrize("cmd,rc", [
    (["true"], 0),
    (["false"], 1),
    (["sh", "-c", "exit 3"], 3),
    (["sh", "-c", "kill -9 $$"], 137),
])
def test_exit_status(harness, workdir, cmd, rc):
    harness.expect(harness.run_mrc("t1", *cmd), rc)
