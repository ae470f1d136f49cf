"""Issue 2 acceptance: a file written on the target appears on the head with
its content, mode and mtime. Needs working mrc binaries."""

import os
import stat
import subprocess

import pytest

pytestmark = pytest.mark.needs_mrc

STAMP = "2020-01-02 03:04:05"


def test_written_file_reaches_head(harness, workdir):
    cp = harness.expect(harness.run_mrc(
        "t1", "sh", "-c",
        'printf hello > out.txt; chmod 640 out.txt; touch -d "%s" out.txt'
        % STAMP))
    out = workdir / "out.txt"
    assert out.exists(), "out.txt not on the head\n" + harness.describe(cp)
    assert out.read_bytes() == b"hello", harness.describe(cp)
    st = os.stat(out)
    assert stat.S_IMODE(st.st_mode) == 0o640, "mode %o\n%s" % (
        stat.S_IMODE(st.st_mode), harness.describe(cp))
    # same machine, same TZ: the head's reading of the stamp is the target's
    want = int(subprocess.run(["date", "-d", STAMP, "+%s"], check=True,
                              stdout=subprocess.PIPE, text=True).stdout)
    assert int(st.st_mtime) == want, "mtime %s, want %s\n%s" % (
        st.st_mtime, want, harness.describe(cp))
    # and it was written through mrc, not on the target's own /tmp
    assert harness.target_sh("t1", "test -e %s" % out).returncode != 0
