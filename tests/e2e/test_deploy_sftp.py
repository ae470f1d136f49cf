"""Issue 2 acceptance: a target without mrc-target gets it uploaded by SFTP
into its own ~/.cache/mrc/<version>/ on first use. Needs working mrc."""

import pytest

pytestmark = pytest.mark.needs_mrc

PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def test_first_use_uploads_target(harness, workdir):
    # the login PATH sshd gives, and the target's plain PATH: no mrc-target
    assert harness.ssh("t1", "command -v mrc-target").returncode != 0
    assert harness.target_sh(
        "t1", "PATH=%s command -v mrc-target" % PATH).returncode != 0
    assert harness.target_sh("t1", "test -e /root/.cache/mrc").returncode != 0
    cp = harness.expect(harness.run_mrc("t1", "true"), 0, "first use")
    ls = harness.target_sh("t1", "ls -l /root/.cache/mrc/*/mrc-target && "
                           "test -x /root/.cache/mrc/*/mrc-target")
    assert ls.returncode == 0, "no ~/.cache/mrc/*/mrc-target on t1: %s%s\n%s" \
        % (ls.stdout, ls.stderr, harness.describe(cp))
    # the uploaded copy serves the next run too
    harness.expect(harness.run_mrc("t1", "true"), 0, "second use")
