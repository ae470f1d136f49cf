"""Issue 2 acceptance: an unreachable host or a closed port gives exit 255
with a clear message, within ConnectTimeout + a few s. Needs working mrc."""

import re

import pytest

import harness as H

pytestmark = pytest.mark.needs_mrc


@pytest.mark.parametrize("host", ["t1-dead", "t1-closed"])
def test_cannot_connect(harness, workdir, host):
    # t1-dead: an address of t1's veth subnet nobody answers (link up);
    # t1-closed: t1's address, a port nothing listens on
    cp = harness.run_mrc(host, "touch", "marker", timeout=60)
    harness.expect(cp, 255, host)
    assert re.search(r"connect", cp.stderr, re.I), \
        "no 'connect' in the message\n" + harness.describe(cp)
    assert len(cp.stderr.strip().splitlines()) >= 1
    assert cp.elapsed < H.CONNECT_TIMEOUT + 5, \
        "took %.1fs\n%s" % (cp.elapsed, harness.describe(cp))
    assert not (workdir / "marker").exists()
