"""Issue 4: mosctl as an operator uses it on real daemons (4 mosixd in
network namespaces): leave phases the node out of every view and join
brings it back; block CLUSTER drops that cluster from this node's view
(and only this node's) and unblock lets it back.
"""

import subprocess

import pytest

import mosix_cluster as M

STEP_MS = 500


def _mosctl(node, *args):
    p = subprocess.run([str(M.MosixCluster.bin("mosctl")), "--socket", str(node.socket), *args],
                       capture_output=True, text=True, timeout=10)
    assert p.returncode == 0, "mosctl %s on %r: %s" % (" ".join(args), node, p.stderr)
    return p.stdout


@pytest.fixture(autouse=True)
def _need():
    M.require("mosixd", "mosctl", "mosmon")


def test_leave_phases_a_node_out_and_join_brings_it_back():
    with M.MosixCluster(step_ms=STEP_MS, window=2) as c:
        nodes = c.one_cluster(range(1, 5))
        assert M.wait_for(lambda: all(n.ids() == [1, 2, 3, 4] for n in nodes), 30)
        limit_s = nodes[0].status()["stats"]["age_limit_ms"] / 1000
        _mosctl(nodes[3], "leave")
        assert nodes[3].status()["active"] is False
        others = nodes[:3]
        assert M.wait_for(lambda: all(n.ids() == [1, 2, 3] for n in others), limit_s + 5), \
            "n4 still listed after leave: %s" % {n.id: n.ids() for n in others}
        _mosctl(nodes[3], "join")
        assert M.wait_for(lambda: all(n.ids() == [1, 2, 3, 4] for n in nodes), limit_s), \
            "n4 not back after join: %s" % {n.id: n.ids() for n in nodes}


def test_block_drops_a_cluster_from_this_node_only_and_unblock_restores_it():
    with M.MosixCluster(step_ms=STEP_MS, window=2) as c:
        a, b = c.two_clusters((1, 2), (3, 4))
        assert M.wait_for(lambda: all(n.ids() == [1, 2, 3, 4] for n in a + b), 40)
        _mosctl(a[0], "block", "2")
        assert a[0].status()["blocked"] == [2]
        assert a[0].ids() == [1, 2], "cluster 2 still in n1's view: %s" % a[0].ids()
        assert a[1].ids() == [1, 2, 3, 4], "blocking on n1 changed n2's view"
        # Still blocked a few steps later: gossip from n2 does not bring it back.
        assert not M.wait_for(lambda: a[0].ids() != [1, 2], 6 * STEP_MS / 1000)
        # Our own cluster cannot be blocked.
        p = subprocess.run([str(M.MosixCluster.bin("mosctl")), "--socket", str(a[0].socket), "block", "1"],
                           capture_output=True, text=True, timeout=10)
        assert p.returncode != 0 and p.stderr.strip(), "blocking our own cluster should be refused"
        _mosctl(a[0], "unblock", "2")
        assert M.wait_for(lambda: a[0].ids() == [1, 2, 3, 4], 30), "cluster 2 not back: %s" % a[0].ids()
