"""Issue 2 acceptance: 20 MiB of stdin reach the job. Needs working mrc."""

import pytest

pytestmark = pytest.mark.needs_mrc


def test_stdin_forwarded(harness, workdir):
    cp = harness.expect(harness.run_mrc("t1", "wc", "-c",
                                        input=b"\0" * (20 * 1024 * 1024)))
    assert cp.stdout.strip() == "20971520", harness.describe(cp)
