"""examples/scratch: scratch data on the target's own /tmp, only the result
on the head node."""

import pytest

from examples_common import run_example

pytestmark = pytest.mark.needs_mrc


def test_scratch_stays_on_target(harness, workdir):
    run_example(harness, workdir, "scratch")
    # Nothing of the 256 MiB scratch reached the head's export.
    total = sum(p.stat().st_size for p in workdir.rglob("*") if p.is_file())
    assert total < 1024 * 1024, "export holds %d bytes" % total
