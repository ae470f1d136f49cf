"""Issue 4: 8 real mosixd in 8 network namespaces gossip their state.

Every node's `mosmon --json` lists all 8 with ages under the formula's
maximum; a node killed with kill -9 disappears from every view within the
age limit; a node started later appears everywhere; two clusters of 4 see
each other's nodes; garbage and replayed packets change nothing.
"""

import os
import socket
import time

import pytest

import mosix_cluster as M

STEP_MS = 500
WINDOW = 4
N = 8


@pytest.fixture(scope="module")
def binaries():
    M.require("mosixd", "mosmon", "mosctl")


def _views(nodes):
    return {n.id: n.json() for n in nodes}


def _everyone_lists(nodes, want):
    views = _views(nodes)
    return all(v is not None and sorted(e["id"] for e in v["nodes"]) == want for v in views.values())


def test_eight_nodes_see_each_other_with_ages_under_the_maximum(binaries):
    _avg, mx = M.expected_ages(N, WINDOW)
    with M.MosixCluster(step_ms=STEP_MS, window=WINDOW) as c:
        nodes = c.one_cluster(range(1, N + 1))
        want = list(range(1, N + 1))
        assert M.wait_for(lambda: _everyone_lists(nodes, want), 30), \
            "not every node lists all 8: %s" % {n.id: n.ids() for n in nodes}
        # The view as a user samples it, 60 times over ~45 steps. The
        # formulas are in whole steps; a sample falls anywhere within a step,
        # which adds up to one step to what it sees. The formulas are held to
        # the tolerance (10%, as in bench/gossip-ages); at W = N/2, as
        # here, the simulation itself measures the maximum 13% over the
        # formula (4.89 steps: `gossip-ages --nodes 8 --windows 4`). So: the oldest
        # entry of a listing is, on average, under the expected maximum +10%
        # (+1 step), the average age under the expected average +10% (+1
        # step), and no entry is ever past the age limit.
        step_s = STEP_MS / 1000
        maxes, ages = [], []
        limit_s = nodes[0].status()["stats"]["age_limit_ms"] / 1000
        for _ in range(60):
            for n, v in _views(nodes).items():
                assert v is not None, "mosmon --json failed on n%d" % n
                assert sorted(e["id"] for e in v["nodes"]) == want, "n%d lost a node: %s" % (n, v)
                mine = []
                for e in v["nodes"]:
                    for k in ("id", "address", "cluster", "cpus", "speed", "load", "mem_total",
                              "mem_free", "guests", "age_s"):
                        assert k in e, "entry without %s: %s" % (k, e)
                    if e["id"] != n:
                        mine.append(e["age_s"] / step_s)
                    assert e["age_s"] <= limit_s + step_s, "n%d lists an entry past the limit: %s" % (n, e)
                ages += mine
                maxes.append(max(mine))
            time.sleep(0.73 * step_s)
        mean_max = sum(maxes) / len(maxes)
        mean_age = sum(ages) / len(ages)
        print("ages in steps: average %.2f (formula %.2f), oldest per listing %.2f (formula %.2f)" % (
            mean_age, _avg, mean_max, mx))
        assert mean_max <= 1.1 * mx + 1, "oldest entry per listing %.2f steps on average; formula max %.2f" % (
            mean_max, mx)
        assert mean_age <= 1.1 * _avg + 1, "average age %.2f steps; formula %.2f" % (mean_age, _avg)
        # Sanity of what is gossiped: this machine's CPUs and memory.
        e1 = [e for e in nodes[1].json()["nodes"] if e["id"] == 1][0]
        assert e1["cpus"] == os.cpu_count()
        assert e1["mem_total"] > 0 and 0 < e1["mem_free"] <= e1["mem_total"]
        assert e1["speed"] > 0
        assert e1["address"] == nodes[0].address


def test_a_killed_node_disappears_and_a_late_node_appears(binaries):
    # The daemons' own age limit (automatic: 3x the expected maximum age,
    # at least 30 steps). A tighter one drops live nodes now and then: the
    # tail of the age distribution is long (12-15 steps here).
    with M.MosixCluster(step_ms=STEP_MS, window=WINDOW) as c:
        nodes = c.one_cluster(range(1, N + 1))
        want = list(range(1, N + 1))
        assert M.wait_for(lambda: _everyone_lists(nodes, want), 30)
        age_limit_s = max(n.status()["stats"]["age_limit_ms"] for n in nodes) / 1000
        # kill -9: gone from every view within the age limit (plus a step of
        # sampling and a step for the check itself).
        c.kill9(nodes[-1])
        t0 = time.monotonic()
        rest = nodes[:-1]
        assert M.wait_for(lambda: _everyone_lists(rest, want[:-1]), age_limit_s + 10), \
            "n8 still listed: %s" % {n.id: n.ids() for n in rest}
        gone_after = time.monotonic() - t0
        assert gone_after <= age_limit_s + 2 * STEP_MS / 1000 + 1, \
            "n8 took %.1f s to disappear (age limit %.1f s)" % (gone_after, age_limit_s)
        # A node started later, knowing one seed only; the others were not
        # told of it: it must appear everywhere, and see everyone, within the
        # age limit — the time in which every live entry is refreshed (its
        # own start-up, ~1 s, included).
        late = c.add(9)
        c.write_config(late, [], seeds=[rest[0]])
        c.start(late)
        t0 = time.monotonic()
        bound = age_limit_s
        everyone = rest + [late]
        assert M.wait_for(lambda: _everyone_lists(everyone, want[:-1] + [9]), bound + 10), \
            "n9 not everywhere: %s" % {n.id: n.ids() for n in everyone}
        took = time.monotonic() - t0
        assert took <= bound, "n9 took %.1f s to appear everywhere (bound %.1f s)" % (took, bound)


def test_two_clusters_of_four_see_each_others_nodes(binaries):
    with M.MosixCluster(step_ms=STEP_MS, window=WINDOW) as c:
        a, b = c.two_clusters(range(1, 5), range(5, 9))
        want = list(range(1, 9))
        assert M.wait_for(lambda: _everyone_lists(a + b, want), 40), \
            "clusters do not see each other: %s" % {n.id: n.ids() for n in a + b}
        v = a[0].json()
        clusters = {e["id"]: e["cluster"] for e in v["nodes"]}
        assert clusters == {1: 1, 2: 1, 3: 1, 4: 1, 5: 2, 6: 2, 7: 2, 8: 2}
        # Less traffic across clusters than within, but some: summed over
        # cluster 1's four nodes (one node's ~40 sends, each foreign with
        # p = 1/11, had none once in a while: (10/11)^40 = 2%).
        time.sleep(10 * STEP_MS / 1000)
        sts = [n.status()["stats"] for n in a]
        foreign = sum(st["packets_sent_foreign"] for st in sts)
        sent = sum(st["packets_sent"] for st in sts)
        assert 0 < foreign < sent / 2, sts


def test_garbage_and_replayed_packets_change_nothing(binaries):
    with M.MosixCluster(step_ms=STEP_MS, window=WINDOW) as c:
        # A fake member (this test, on the bridge address) receives real
        # gossip packets, which it then replays at n1.
        tap = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        tap.bind((c.net + ".254", M.PORT))
        tap.settimeout(20)
        nodes = [c.add(i) for i in range(1, 5)]
        for x in nodes:
            c.write_config(x, nodes, extra_members=[(99, "%s.254:%d" % (c.net, M.PORT))])
        for x in nodes:
            c.start(x)
        want = [1, 2, 3, 4]
        assert M.wait_for(lambda: _everyone_lists(nodes, want), 30)
        captured = []
        while len(captured) < 5:
            data, _ = tap.recvfrom(65536)
            captured.append(data)
        before = nodes[0].status()["stats"]
        target = (nodes[0].ip, M.PORT)
        rng = __import__("random").Random(4)
        for i in range(300):
            junk = bytes(rng.randrange(256) for _ in range(rng.randrange(0, 2000)))
            tap.sendto(junk, target)
        for p in captured:  # the genuine packets again: replays
            for _ in range(3):
                tap.sendto(p, target)
        for p in captured:  # one byte flipped: no longer authentic
            q = bytearray(p)
            q[len(q) // 2] ^= 0x40
            tap.sendto(bytes(q), target)
        time.sleep(2 * STEP_MS / 1000)
        assert nodes[0].alive(), "mosixd died of garbage:\n" + nodes[0].log_tail()
        after = nodes[0].status()["stats"]
        dropped = sum(after["dropped"].values()) - sum(before["dropped"].values())
        assert dropped >= 300 + len(captured) * 4 - 5, (before["dropped"], after["dropped"])
        assert after["dropped"].get("replayed", 0) > before["dropped"].get("replayed", 0)
        assert _everyone_lists(nodes, want), {n.id: n.ids() for n in nodes}
        assert 99 not in (nodes[0].ids() or [])
        tap.close()
