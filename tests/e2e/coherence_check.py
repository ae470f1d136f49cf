"""The randomized coherence workload and its checker (issue 3, point 2).

agent(): run by each participant (three targets through mrc, and the head
itself): random reads and writes of a few shared files (kept open or opened
per operation) and creates, unlinks, existence checks and listings of
uniquely named files, each logged with its start and end time (the
machine's realtime clock: every participant runs on this one machine).

check(): fails on any read that returns a value older than the last write
completed before the read started — a value whose write ended before
another write began that itself ended before the read began — and the same
for names (a name seen missing after its create completed, or present after
its unlink completed). Operations of the head itself are outside the file
service: their changes reach the targets within `head_slack` (fanotify),
and targets' writes reach the head's disk within it (writes buffered under
a write lease are sent within 20 ms).
"""

import json
import os
import random
import sys
import time

WIDTH = 24  # bytes of every value written: fixed, so no read sees a partial length


def agent(me, seconds, seed, nfiles, agents):
    rnd = random.Random(seed)
    out = sys.stdout
    kept = {}
    seq = 0
    created = []

    def log(**kw):
        out.write(json.dumps(kw) + "\n")

    def fd_for(i, flags):
        if rnd.random() < 0.5:
            key = (i, flags)
            if key not in kept:
                kept[key] = os.open("f%d" % i, flags)
            return kept[key], False
        return os.open("f%d" % i, flags), True

    os.makedirs("names", exist_ok=True)
    end = time.time() + seconds
    while time.time() < end:
        op = rnd.random()
        i = rnd.randrange(nfiles)
        t0 = time.time()
        if op < 0.35:
            fd, close = fd_for(i, os.O_RDONLY)
            v = os.pread(fd, WIDTH, 0).decode().strip()
            if close:
                os.close(fd)
            log(op="r", f=i, v=v, s=t0, e=time.time(), a=me)
        elif op < 0.6:
            seq += 1
            v = "%s:%d" % (me, seq)
            fd, close = fd_for(i, os.O_WRONLY)
            os.pwrite(fd, v.ljust(WIDTH).encode(), 0)
            if close:
                os.close(fd)
            log(op="w", f=i, v=v, s=t0, e=time.time(), a=me)
        elif op < 0.72:
            name = "%s-%d" % (me, len(created))
            open("names/" + name, "w").close()
            created.append(name)
            log(op="c", n=name, s=t0, e=time.time(), a=me)
        elif op < 0.8 and created:
            name = created[rnd.randrange(len(created))]
            try:
                os.unlink("names/" + name)
                log(op="u", n=name, s=t0, e=time.time(), a=me)
            except FileNotFoundError:
                pass
        elif op < 0.95:
            who = agents[rnd.randrange(len(agents))]
            name = "%s-%d" % (who, rnd.randrange(40))
            log(op="x", n=name, v=os.path.exists("names/" + name), s=t0, e=time.time(), a=me)
        else:
            names = sorted(os.listdir("names"))
            log(op="l", v=names, s=t0, e=time.time(), a=me)
        time.sleep(rnd.random() * 0.004)
    for fd in kept.values():
        os.close(fd)


def _effective_end(op, reader, head, head_slack):
    """When op's change must be visible to `reader`'s operations: at once
    between targets, within head_slack between a target and the head."""
    if (op["a"] == head) != (reader == head):
        return op["e"] + head_slack
    return op["e"]


def check(ops, initial, head="head", head_slack=0.1):
    """Returns a list of violations (strings); empty means coherent."""
    bad = []
    writes = {}  # file -> list of writes
    by_value = {}
    for o in ops:
        if o["op"] == "w":
            writes.setdefault(o["f"], []).append(o)
            by_value[(o["f"], o["v"])] = o
    for r in (o for o in ops if o["op"] == "r"):
        w = by_value.get((r["f"], r["v"]))
        if w is None and r["v"] != initial:
            bad.append("read of a value nobody wrote: %s" % r)
            continue
        # w counts from when it took effect for this reader (a target's
        # write at the head: up to head_slack after it returned)
        w_end = _effective_end(w, r["a"], head, head_slack) if w else float("-inf")
        # a newer write: began after w ended, and completed before r began
        for n in writes.get(r["f"], []):
            if n is w:
                continue
            if n["s"] > w_end and _effective_end(n, r["a"], head, head_slack) < r["s"]:
                bad.append("stale read: %s returned %r, but %s had completed before it" % (
                    _fmt(r), r["v"], _fmt(n)))
                break
    creates = {o["n"]: o for o in ops if o["op"] == "c"}
    unlinks = {o["n"]: o for o in ops if o["op"] == "u"}

    def expect_present(name, x):
        """True/False if name's presence during x is certain, else None."""
        c, u = creates.get(name), unlinks.get(name)
        c_done = c and _effective_end(c, x["a"], head, head_slack) < x["s"]
        u_started = u and u["s"] < x["e"]
        u_done = u and _effective_end(u, x["a"], head, head_slack) < x["s"]
        if u_done:
            return False
        if c_done and not u_started:
            return True
        if not c or c["s"] > x["e"]:
            return False  # not created yet (or never)
        return None

    for x in (o for o in ops if o["op"] == "x"):
        want = expect_present(x["n"], x)
        if want is not None and want != x["v"]:
            bad.append("stale name: %s saw %s %s" % (_fmt(x), x["n"], "present" if x["v"] else "missing"))
    for ls in (o for o in ops if o["op"] == "l"):
        seen = set(ls["v"])
        for name in set(creates) | set(unlinks):
            want = expect_present(name, ls)
            if want is not None and want != (name in seen):
                bad.append("stale listing: %s %s %s" % (_fmt(ls), "lacks" if want else "still has", name))
    return bad


def _fmt(o):
    return "%s %s@%s [%.4f, %.4f]" % (o["a"], o["op"], o.get("f", o.get("n")), o["s"], o["e"])


if __name__ == "__main__":
    agent(sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5].split(","))
