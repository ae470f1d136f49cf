"""Exports and the hybrid environment: -r is read-only on the target,
--keep-local leaves a subtree to the target, several exports appear at
their head paths, and host-bound variables stay home."""

import pytest

pytestmark = pytest.mark.needs_mrc


def test_read_only_export_refuses_writes(harness, workdir):
    ro = workdir / "ro"
    ro.mkdir()
    (ro / "data.txt").write_text("keep me\n")
    cp = harness.run_mrc("-e", workdir, "-r", ro, "t1", "sh", "-c",
                         "cat ro/data.txt; echo x > ro/new.txt; echo y >> ro/data.txt; "
                         "rm -f ro/data.txt; echo w > rw.txt")
    assert cp.stdout.startswith("keep me\n"), harness.describe(cp)
    assert "Read-only file system" in cp.stderr, harness.describe(cp)
    assert (ro / "data.txt").read_text() == "keep me\n"
    assert not (ro / "new.txt").exists()
    assert (workdir / "rw.txt").read_text() == "w\n", harness.describe(cp)


def test_keep_local_subtree_stays_on_target(harness, workdir):
    (workdir / "build").mkdir()
    (workdir / "build" / "head-only.txt").write_text("head\n")
    cp = harness.expect(harness.run_mrc(
        "--keep-local", workdir / "build", "t1", "sh", "-c",
        "ls build; echo target > build/out.txt; cat build/out.txt; echo r > result.txt"))
    assert "head-only.txt" not in cp.stdout, harness.describe(cp)
    assert "target" in cp.stdout, harness.describe(cp)
    assert not (workdir / "build" / "out.txt").exists(), "keep-local output reached the head"
    assert (workdir / "result.txt").read_text() == "r\n"


def test_two_exports_at_their_paths(harness, workdir):
    other = harness.head_root / ("other-" + workdir.name)
    other.mkdir()
    (other / "o.txt").write_text("other export\n")
    cp = harness.expect(harness.run_mrc("-e", workdir, "-e", other, "t1", "cat", other / "o.txt"))
    assert cp.stdout == "other export\n", harness.describe(cp)


def test_environment_is_the_heads_minus_host_bound(harness, workdir):
    env = {"MRC_E2E_VAR": "from-head", "SSH_CONNECTION": "1 2 3 4", "DISPLAY": ":7"}
    cp = harness.expect(harness.run_mrc(
        "--env", "EXTRA=set", "t1", "sh", "-c",
        'echo "v=$MRC_E2E_VAR s=${SSH_CONNECTION:-none} d=${DISPLAY:-none} e=$EXTRA"', env=env))
    assert cp.stdout.strip() == "v=from-head s=none d=none e=set", harness.describe(cp)
