"""Issue 3 acceptance, randomized: concurrent readers and writers on three
targets plus the head itself, every operation logged with its start and
end time, and a checker (coherence_check.py) that fails on any read that
returns a value older than the last write completed before it started."""

import json
import os
import subprocess
import sys
import time

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import coherence_check  # noqa: E402

pytestmark = [pytest.mark.needs_mrc, pytest.mark.targets(3)]

SECONDS = 8
FILES = 3
AGENTS = ["t1", "t2", "t3", "head"]


def _parse(name, text):
    ops = []
    for line in text.splitlines():
        line = line.strip()
        if line:
            ops.append(json.loads(line))
    assert ops, "%s logged no operations" % name
    return ops


def test_random_concurrent_ops_on_three_targets_and_head_are_coherent(harness, workdir):
    src = os.path.join(os.path.dirname(os.path.abspath(__file__)), "coherence_check.py")
    (workdir / "agent.py").write_text(open(src).read())
    for i in range(FILES):
        (workdir / ("f%d" % i)).write_text("init".ljust(coherence_check.WIDTH))
    (workdir / "names").mkdir()
    seed = int(os.environ.get("MRC_TEST_SEED", time.time()))
    args = lambda me, k: ["python3", "agent.py", me, str(SECONDS), str(seed + k), str(FILES), ",".join(AGENTS)]
    procs = {t: harness.popen_mrc(t, *args(t, k)) for k, t in enumerate(AGENTS[:3])}
    head = subprocess.Popen(["/usr/bin/python3"] + args("head", 3)[1:], cwd=str(workdir),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    ops = []
    for t, p in procs.items():
        cp = harness.wait_mrc(p, SECONDS + 60)
        harness.expect(cp, 0, "agent on %s" % t)
        ops += _parse(t, cp.stdout)
    out, err = head.communicate(timeout=SECONDS + 60)
    assert head.returncode == 0, err.decode()
    ops += _parse("head", out.decode())
    kinds = {k: sum(1 for o in ops if o["op"] == k) for k in "rwcuxl"}
    assert kinds["r"] > 200 and kinds["w"] > 200 and kinds["x"] > 100, kinds
    bad = coherence_check.check(ops, initial="init")
    if os.environ.get("MRC_DUMP_OPS"):
        json.dump(ops, open(os.environ["MRC_DUMP_OPS"], "w"))
    assert not bad, "seed %d, %d operations %s, %d violations:\n%s" % (
        seed, len(ops), kinds, len(bad), "\n".join(bad[:20]))


def test_checker_catches_a_stale_read():
    """The checker itself: a read that returns an overwritten value fails."""
    w1 = dict(op="w", f=0, v="a:1", s=1.0, e=1.1, a="t1")
    w2 = dict(op="w", f=0, v="a:2", s=1.2, e=1.3, a="t1")
    good = dict(op="r", f=0, v="a:2", s=1.4, e=1.5, a="t2")
    racy = dict(op="r", f=0, v="a:1", s=1.25, e=1.5, a="t2")  # concurrent with w2: fine
    stale = dict(op="r", f=0, v="a:1", s=1.4, e=1.5, a="t2")
    assert coherence_check.check([w1, w2, good, racy], initial="init") == []
    assert len(coherence_check.check([w1, w2, stale], initial="init")) == 1
    c = dict(op="c", n="t1-0", s=1.0, e=1.1, a="t1")
    missing = dict(op="x", n="t1-0", v=False, s=1.2, e=1.3, a="t2")
    assert len(coherence_check.check([c, missing], initial="init")) == 1
    t_w = dict(op="w", f=0, v="a:3", s=3.0, e=3.01, a="t1")
    head_r_within = dict(op="r", f=0, v="a:2", s=3.05, e=3.06, a="head")  # buffered up to 20 ms
    head_r_late = dict(op="r", f=0, v="a:2", s=3.2, e=3.21, a="head")
    assert coherence_check.check([w1, w2, t_w, head_r_within], initial="init") == []
    assert len(coherence_check.check([w1, w2, t_w, head_r_late], initial="init")) == 1
    head_w = dict(op="w", f=0, v="head:1", s=2.0, e=2.01, a="head")
    within = dict(op="r", f=0, v="a:2", s=2.05, e=2.06, a="t3")  # inside the 100 ms head slack
    late = dict(op="r", f=0, v="a:2", s=2.2, e=2.21, a="t3")
    assert coherence_check.check([w1, w2, head_w, within], initial="init") == []
    assert len(coherence_check.check([w1, w2, head_w, late], initial="init")) == 1
