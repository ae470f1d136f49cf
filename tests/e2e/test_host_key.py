"""Issue 2 acceptance: an unknown host key is refused (nothing runs) unless
--accept-new, which records it. Needs working mrc binaries."""

import re

import pytest

pytestmark = pytest.mark.needs_mrc

JOB = ["sh", "-c", "touch /root/hk-marker; touch hk-marker"]


def _ran(harness, workdir):
    return (workdir / "hk-marker").exists() or \
        harness.target_sh("t1", "test -e /root/hk-marker").returncode == 0


def test_unknown_host_key_refused(harness, workdir):
    cfg, kh = harness.make_ssh_config("unknown")
    cp = harness.run_mrc("t1", *JOB, config=cfg)
    harness.expect(cp, 255, "unknown host key")
    assert re.search(r"host key", cp.stderr, re.I) and \
        re.search(r"not known|unknown|not in|no .*known", cp.stderr, re.I), \
        "stderr does not say the host key is not known\n" + \
        harness.describe(cp)
    assert "--accept-new" in cp.stderr, \
        "stderr does not mention --accept-new\n" + harness.describe(cp)
    assert not _ran(harness, workdir), "the job ran\n" + harness.describe(cp)
    assert kh.read_text() == "", "known_hosts changed without --accept-new"


def test_accept_new(harness, workdir):
    cfg, kh = harness.make_ssh_config("accept")
    cp = harness.run_mrc("--accept-new", "t1", *JOB, config=cfg)
    harness.expect(cp, 0, "--accept-new")
    assert _ran(harness, workdir), harness.describe(cp)
    text = kh.read_text()
    assert harness.t1.host_pub.split()[1] in text, \
        "known_hosts did not gain t1's key: %r\n%s" % (text,
                                                        harness.describe(cp))
    # now known: works without the flag
    harness.expect(harness.run_mrc("t1", "true", config=cfg), 0,
                   "after --accept-new")
