"""`cmake --install` lays out every binary, man page, the systemd unit and
the example config under a prefix, and the installed mrc runs a job with
the installed mrc-target (found beside it)."""

import os
import shutil
import subprocess

import pytest

pytestmark = [pytest.mark.needs_mrc, pytest.mark.targets(0)]

EXPECTED = [
    "bin/mrc", "bin/mrc-target", "bin/mosmon", "bin/mosctl", "bin/mosrun", "bin/migrate", "bin/mosps",
    "sbin/mosixd",
    "share/man/man1/mosmon.1", "share/man/man1/mosctl.1",
    "share/man/man1/mosrun.1", "share/man/man1/migrate.1", "share/man/man1/mosps.1",
    "share/man/man8/mosixd.8", "lib/systemd/system/mosixd.service",
    "share/doc/mrc/examples/mosixd.toml",
]


@pytest.fixture(scope="module")
def prefix(tmp_path_factory):
    build = os.environ["MRC_BUILD_DIR"]
    cmake = shutil.which("cmake")
    assert cmake, "cmake not found (scripts/deps.sh installs it)"
    p = tmp_path_factory.mktemp("prefix")
    cp = subprocess.run([cmake, "--install", build, "--prefix", str(p)],
                        capture_output=True, text=True, timeout=120)
    assert cp.returncode == 0, cp.stdout + cp.stderr
    return p


def test_layout(prefix):
    missing = [f for f in EXPECTED if not (prefix / f).is_file()]
    assert not missing, "not installed: %s" % missing
    for f in EXPECTED:
        if f.startswith(("bin/", "sbin/")):
            assert os.access(prefix / f, os.X_OK), f


def test_unit_runs_the_installed_daemon(prefix):
    unit = (prefix / "lib/systemd/system/mosixd.service").read_text()
    exec_start = [l for l in unit.splitlines() if l.startswith("ExecStart=")]
    assert exec_start == ["ExecStart=%s/sbin/mosixd -f --config /etc/mosix/mosixd.toml" % prefix], unit
    # the example config is one the installed daemon accepts
    cp = subprocess.run([str(prefix / "sbin/mosixd"), "-t", "--config",
                         str(prefix / "share/doc/mrc/examples/mosixd.toml")],
                        capture_output=True, text=True, timeout=60)
    assert cp.returncode == 0, cp.stdout + cp.stderr


def test_man_pages_render(prefix):
    man = shutil.which("man")
    assert man, "man not found (scripts/deps.sh installs man-db)"
    for page in ("share/man/man8/mosixd.8", "share/man/man1/mosmon.1", "share/man/man1/mosctl.1",
                 "share/man/man1/mosrun.1", "share/man/man1/migrate.1", "share/man/man1/mosps.1"):
        cp = subprocess.run([man, "-l", "-P", "cat", str(prefix / page)], capture_output=True,
                            text=True, timeout=60, env=dict(os.environ, MANWIDTH="80"))
        assert cp.returncode == 0 and "NAME" in cp.stdout, page + ": " + cp.stderr


def test_installed_mrc_runs_a_job(prefix, tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    (work / "in.txt").write_text("from the head\n")
    runtime = tmp_path / "rt"
    runtime.mkdir()
    env = dict(os.environ, MRC_RUNTIME_DIR=str(runtime))
    cp = subprocess.run([str(prefix / "bin/mrc"), "local", "sh", "-c", "cat in.txt; echo out > out.txt"],
                        cwd=work, env=env, capture_output=True, text=True, timeout=120)
    assert cp.returncode == 0, cp.stdout + cp.stderr
    assert cp.stdout == "from the head\n"
    assert (work / "out.txt").read_text() == "out\n"
