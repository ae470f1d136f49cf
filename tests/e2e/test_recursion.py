"""Issue 3 acceptance, recursion: a job on t1 runs mrc again, onto t2 (over
a direct link between the two namespaces; t2 is not reachable from the
head). The job on t2 sees the head's files through t1, and the checks of
the direct case hold on the t2 side: changes by another target (t3) and by
the head itself reach t2's warm caches through t1's, at once (head-local
edits within 100 ms), and the randomized check passes with t2 among the
participants."""

import json
import os
import subprocess
import sys
import time

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import coherence_check  # noqa: E402
import test_coherence_directed as D  # noqa: E402

pytestmark = [pytest.mark.needs_mrc, pytest.mark.targets(3)]


@pytest.fixture(scope="module")
def via_t1(harness):
    """launch(harness, "t2", argv...): argv on t2, by an mrc that t1 runs."""
    _, t2_ip = harness.link("t1", "t2")
    cfg = harness.write_ssh_config(harness.run_dir / "ssh_config.from-t1", harness.known_hosts,
                                   addresses={"t2": t2_ip})

    def launch(h, t, *argv):
        if t != "t2":
            return h.popen_mrc(t, *argv)
        # t1 runs the mrc of this build: its directory goes along, read-only
        # (the build may live where t1 has files of its own, such as /tmp).
        here = str(h.default_cwd or h.head_root)
        return h.popen_mrc("-e", here, "-r", str(h.mrc_bin.parent), "t1",
                           str(h.mrc_bin), "-F", str(cfg), "t2", *argv)
    return launch


def test_job_on_t2_sees_head_files_through_t1(harness, workdir, via_t1):
    (workdir / "in.txt").write_text("from the head\n")
    p = via_t1(harness, "t2", "sh", "-c", "cat in.txt; hostname -I; echo written > out.txt")
    cp = harness.wait_mrc(p, 60)
    harness.expect(cp, 0, "mrc t1 mrc t2")
    assert cp.stdout.startswith("from the head\n"), harness.describe(cp)
    ips = cp.stdout.split("\n")[1].split()
    assert harness.target("t2").ip in ips and harness.target("t1").ip not in ips, ips  # ran on t2
    assert (workdir / "out.txt").read_text() == "written\n"


def test_append_by_t3_seen_on_t2_through_t1(harness, workdir, via_t1):
    (workdir / "f").write_text("one")
    procs = D._start_and_wait_ready(harness, workdir, D.APPEND_READER, ["t2"], launch=via_t1)
    harness.expect(harness.run_mrc("t3", "sh", "-c", "printf two >> f && touch go"))
    assert D._finish(harness, procs)["t2"] == "one 3 onetwo 6"


def test_rename_by_t3_seen_by_cached_stat_on_t2(harness, workdir, via_t1):
    for n in ("a", "c"):
        (workdir / n).write_text(n)
    procs = D._start_and_wait_ready(harness, workdir, D.NAME_WATCHER, ["t2"], launch=via_t1)
    harness.expect(harness.run_mrc("t3", "sh", "-c", "mv a b && rm c && touch go"))
    assert D._finish(harness, procs)["t2"] == "False True False b"


def test_head_local_edit_reaches_t2_within_100ms(harness, workdir, via_t1):
    (workdir / "f").write_text("before")
    procs = D._start_and_wait_ready(harness, workdir, D.EDIT_WATCHER, ["t2"], launch=via_t1)
    time.sleep(0.2)
    t0 = time.time()
    (workdir / "f").write_text("after!")
    (workdir / "new").write_text("x")
    t1 = time.time()
    f_seen, new_seen = (eval(x) for x in D._finish(harness, procs)["t2"].split())
    assert f_seen is not None and f_seen - t0 < 0.1, "t2 saw the edit after %s" % f_seen
    assert new_seen is not None and new_seen - t1 < 0.1, "t2 saw the new file after %s" % new_seen


def test_random_ops_with_t2_behind_t1_are_coherent(harness, workdir, via_t1):
    agents = ["t2", "t3", "head"]
    src = os.path.join(os.path.dirname(os.path.abspath(__file__)), "coherence_check.py")
    (workdir / "agent.py").write_text(open(src).read())
    for i in range(3):
        (workdir / ("f%d" % i)).write_text("init".ljust(coherence_check.WIDTH))
    (workdir / "names").mkdir()
    seed = int(os.environ.get("MRC_TEST_SEED", time.time()))
    args = lambda me, k: ["python3", "agent.py", me, "6", str(seed + k), "3", ",".join(agents)]
    procs = {t: via_t1(harness, t, *args(t, k)) for k, t in enumerate(agents[:2])}
    head = subprocess.Popen(["/usr/bin/python3"] + args("head", 2)[1:], cwd=str(workdir),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    ops = []
    for t, p in procs.items():
        cp = harness.wait_mrc(p, 70)
        harness.expect(cp, 0, "agent on %s" % t)
        ops += [json.loads(l) for l in cp.stdout.splitlines() if l.strip()]
    out, err = head.communicate(timeout=70)
    assert head.returncode == 0, err.decode()
    ops += [json.loads(l) for l in out.decode().splitlines() if l.strip()]
    assert sum(1 for o in ops if o["a"] == "t2" and o["op"] == "r") > 50, "t2 did too little"
    bad = coherence_check.check(ops, initial="init")
    assert not bad, "seed %d, %d ops, %d violations:\n%s" % (seed, len(ops), len(bad), "\n".join(bad[:20]))
