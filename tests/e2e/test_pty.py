"""A pty when the head's stdin is a terminal: the job sees a tty of the
head's window size, and a window-size change reaches it (SIGWINCH)."""

import fcntl
import os
import signal
import struct
import termios
import time

import pytest

pytestmark = pytest.mark.needs_mrc


def set_size(fd, rows, cols):
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


def read_until(fd, needle, timeout):
    out = b""
    deadline = time.time() + timeout
    while needle not in out and time.time() < deadline:
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
    return out


def test_pty_size_and_winch(harness, workdir):
    job = ('tty; stty size; trap \'stty size; echo winched; exit 0\' WINCH; '
           'echo ready; i=0; while [ $i -lt 200 ]; do sleep 0.05; i=$((i+1)); done')
    env = dict(os.environ, HOME=str(harness.run_dir / "home"))
    env.pop("SSH_AUTH_SOCK", None)
    fd, slave = os.openpty()
    set_size(fd, 33, 111)  # before mrc starts: it reads the size once at start
    pid = os.fork()
    if pid == 0:
        os.setsid()
        fcntl.ioctl(slave, termios.TIOCSCTTY, 0)
        for i in range(3):
            os.dup2(slave, i)
        os.chdir(workdir)
        os.execve(str(harness.mrc_bin), [str(harness.mrc_bin), "-F", str(harness.ssh_config),
                                          "t1", "sh", "-c", job], env)
    os.close(slave)
    try:
        out = read_until(fd, b"ready", 30)
        assert b"/dev/pts/" in out and b"33 111" in out, out
        set_size(fd, 44, 99)
        os.kill(pid, signal.SIGWINCH)
        out += read_until(fd, b"winched", 15)
        assert b"44 99" in out, out
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0, out
    finally:
        try:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass
        os.close(fd)
