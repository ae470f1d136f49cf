"""Issue 2 acceptance: nothing outside the exports is served, whether named
by an absolute symlink, a relative symlink or a ../ path.
Needs working mrc binaries."""

import os

import pytest

pytestmark = pytest.mark.needs_mrc


@pytest.fixture
def layout(workdir):
    export = workdir / "export"
    outside = workdir / "outside"
    export.mkdir()
    outside.mkdir()
    secret = os.urandom(8).hex()
    (outside / "secret.txt").write_text("SECRET-%s\n" % secret)
    (export / "inside.txt").write_text("inside-ok\n")
    os.symlink(str(outside / "secret.txt"), export / "abs")
    os.symlink("../outside/secret.txt", export / "rel")
    return export, secret


@pytest.mark.parametrize("path", ["abs", "rel", "../outside/secret.txt"])
def test_outside_not_served(harness, layout, path):
    export, secret = layout
    # inside.txt first: proves the job ran and exports work at all
    cp = harness.run_mrc("t1", "cat", "inside.txt", path, cwd=export)
    assert cp.returncode != 255, "mrc failed\n" + harness.describe(cp)
    assert "inside-ok" in cp.stdout, \
        "job did not read the export\n" + harness.describe(cp)
    assert secret not in cp.stdout, \
        "SECRET OUTSIDE THE EXPORT WAS SERVED via %s\n%s" % (
            path, harness.describe(cp))
