"""Issue 2 acceptance: `mrc local` runs a job on this machine without SSH,
reading and writing the head's files, passing exit codes.
Needs working mrc binaries."""

import pytest

pytestmark = [pytest.mark.needs_mrc, pytest.mark.targets(0)]


def test_local_reads_and_writes(harness, workdir):
    (workdir / "in.txt").write_text("input line\n")
    cp = harness.expect(harness.run_mrc(
        "local", "sh", "-c", "cat in.txt; echo x > out.txt"))
    assert cp.stdout == "input line\n", harness.describe(cp)
    assert (workdir / "out.txt").read_text() == "x\n", harness.describe(cp)


@pytest.mark.parametrize("cmd,rc", [
    (["true"], 0),
    (["sh", "-c", "exit 3"], 3),
    (["sh", "-c", "kill -9 $$"], 137),
])
def test_local_exit_status(harness, workdir, cmd, rc):
    harness.expect(harness.run_mrc("local", *cmd), rc)
