"""examples/c-build: make on t1 builds sources that live only on the head;
the binary lands on the head and runs there."""

import pytest

from examples_common import run_example

pytestmark = pytest.mark.needs_mrc


def test_c_build_on_target(harness, workdir):
    run_example(harness, workdir, "c-build")
    built = list(workdir.glob("mrc-c-build.*/crcsum"))
    assert built, "no crcsum binary on the head node"
    # The sources were never on the target: its /tmp is its own tmpfs.
    assert harness.target_sh("t1", "ls %s 2>&1 || true" % built[0].parent).stdout.find("Makefile") < 0
