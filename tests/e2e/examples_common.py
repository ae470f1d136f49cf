"""Runs an examples/NAME/run.sh through the harness: the example gets an
mrc wrapper carrying the harness's ssh config, and a work dir on the head."""

import os
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def run_example(harness, workdir, name, host="t1", timeout=600):
    wrapper = workdir / "mrc-wrapper"
    wrapper.write_text('#!/bin/sh\nexec "%s" -F "%s" "$@"\n' % (harness.mrc_bin, harness.ssh_config))
    wrapper.chmod(0o755)
    env = dict(os.environ, WORKDIR=str(workdir), HOME=str(harness.run_dir / "home"))
    env.pop("SSH_AUTH_SOCK", None)
    cp = subprocess.run([str(REPO / "examples" / name / "run.sh"), str(wrapper), host],
                        cwd=workdir, env=env, capture_output=True, text=True, timeout=timeout)
    msg = "example %s on %s: exit %d\n--- stdout ---\n%s\n--- stderr ---\n%s" % (
        name, host, cp.returncode, cp.stdout[-3000:], cp.stderr[-3000:])
    assert cp.returncode == 0, msg
    assert "PASS" in cp.stdout, msg
    return cp
