"""What the migration tests share (issue 5): the zdtm workloads built for
a run, reading a workload's output, waiting for a condition."""

import os
import subprocess
import time


def build_zdtm(directory):
    """tests/e2e/zdtm/zdtm.c compiled into `directory`; its path."""
    exe = os.path.join(str(directory), "zdtm")
    src = os.path.join(os.path.dirname(__file__), "zdtm", "zdtm.c")
    subprocess.run(["cc", "-O2", "-Wall", "-o", exe, src], check=True)
    return exe


def text(path):
    """The file's text; "" while it does not exist."""
    try:
        return path.read_text()
    except FileNotFoundError:
        return ""


def wait_for(cond, timeout, what):
    """Polls cond() every 50 ms; fails naming `what` after `timeout` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.05)
    raise AssertionError("timed out waiting for " + what)
