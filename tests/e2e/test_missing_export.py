"""Issue 2 acceptance: a nonexistent export is refused before anything runs.
Needs working mrc binaries."""

import pytest

pytestmark = pytest.mark.needs_mrc


def test_missing_export(harness, workdir):
    missing = harness.tmp_dir / "nonexistent"
    cp = harness.run_mrc("-e", missing, "t1", "touch", "marker")
    harness.expect(cp, 255, "missing export")
    assert str(missing) in cp.stderr, \
        "message does not name the path\n" + harness.describe(cp)
    assert not (workdir / "marker").exists()
    assert not missing.exists()
    found = harness.target_sh("t1", "find /tmp /root -name marker")
    assert found.stdout == "", "marker made on the target: %s\n%s" % (
        found.stdout, harness.describe(cp))
