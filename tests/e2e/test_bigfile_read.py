"""Issue 2 acceptance: a 50 MB file of the head is read on the target.
Needs working mrc binaries (fails with mrc's stderr until then)."""

import hashlib
import os

import pytest

pytestmark = pytest.mark.needs_mrc


def test_sha256_of_head_file_on_target(harness, workdir):
    data = os.urandom(50 * 1024 * 1024)
    (workdir / "big.bin").write_bytes(data)
    want = hashlib.sha256(data).hexdigest()
    # the target cannot see the head's file by itself
    assert harness.target_sh("t1", "test -e %s/big.bin" % workdir).returncode != 0
    cp = harness.expect(harness.run_mrc("t1", "sha256sum", "big.bin",
                                        timeout=180))
    got = cp.stdout.split()[0] if cp.stdout.split() else ""
    assert got == want, "checksum differs (want %s)\n%s" % (
        want, harness.describe(cp))
