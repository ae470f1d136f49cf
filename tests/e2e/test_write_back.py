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


DIRECT_SCRIPT = r"""
import os
fd = os.open("direct.bin", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
os.write(fd, b"a" * (1 << 20))                 # direct I/O: created write-only
r = os.open("direct.bin", os.O_RDONLY)
first = os.pread(r, 4, 0)                      # caches the page here
os.pwrite(fd, b"bbbb", 0)
again = os.pread(r, 4, 0)                      # the same open, after the write
fresh = os.pread(os.open("direct.bin", os.O_RDONLY), 4, 0)
tail = os.pread(r, 4, (1 << 20) - 4)
print(first.decode(), again.decode(), fresh.decode(), tail.decode())
"""


def test_write_only_created_file_keeps_readers_on_the_target_coherent(harness, workdir):
    # A file created O_WRONLY is written with FUSE direct I/O (no copy into
    # the target's page cache); a reader on the same target that cached a
    # page must still see the write once it has returned (docs/design.md).
    (workdir / "direct.py").write_text(DIRECT_SCRIPT)
    cp = harness.expect(harness.run_mrc("t1", "/usr/bin/python3", "direct.py"))
    assert cp.stdout.split() == ["aaaa", "bbbb", "bbbb", "aaaa"], harness.describe(cp)
    data = (workdir / "direct.bin").read_bytes()
    assert len(data) == 1 << 20 and data[:4] == b"bbbb" and data[4:8] == b"aaaa", harness.describe(cp)
