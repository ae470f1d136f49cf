"""Issue 2: mrc-target runs on a bare Debian 12 — it is a static binary
that needs no shared library (not even libc) and runs in an empty chroot."""

import shutil
import subprocess

import pytest

pytestmark = [pytest.mark.needs_mrc, pytest.mark.targets(0)]


def test_target_binary_is_static(harness, workdir):
    out = subprocess.run(["ldd", str(harness.mrc_target_bin)], capture_output=True, text=True)
    assert "not a dynamic executable" in out.stdout + out.stderr, out.stdout + out.stderr


def test_target_runs_in_empty_chroot(harness, workdir):
    root = workdir / "bare"
    root.mkdir()
    shutil.copy(harness.mrc_target_bin, root / "mrc-target")
    out = subprocess.run(["chroot", str(root), "/mrc-target", "--version"],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0 and out.stdout.startswith("mrc-target "), out.stdout + out.stderr
