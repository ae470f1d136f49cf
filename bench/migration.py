#!/usr/bin/python3
"""Issue 5's migration figures, measured in one run on two real mosixd in
network namespaces (tests/e2e/mosix_cluster.py), the link from the home
node n1 to n2 shaped with tc tbf (default 1gbit) on n1's veth:

  * throughput: process memory moved / the time the process was frozen
    (seize to the destination's word that it runs, as `migrate -v` says),
    for incompressible memory (zdtm array: random) and compressible memory
    (zdtm text: numbered lines), against raw TCP n1 -> n2 on the same
    shaped link in the same run (target: incompressible >= 0.95x);
  * freeze time for 64 MiB, 256 MiB and 1 GiB of incompressible memory.

Each figure is the median of --runs interleaved runs (a raw TCP transfer
between migrations). Needs root, tc, cc and the built mosixd, mosrun,
migrate (MRC_BUILD_DIR, default ./build).

  sudo MRC_BUILD_DIR=$PWD/build /usr/bin/python3 bench/migration.py [--runs 5] [--rate 1gbit]
"""

import argparse
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests" / "e2e"))
import mosix_cluster as M  # noqa: E402

RAW_PORT = 7100
VERBOSE = re.compile(r"(\d+) bytes of memory, image (\d+) bytes, frozen ([0-9.]+) ms")


def log(*a):
    print(*a, flush=True)


class Bench:
    def __init__(self, args):
        self.args = args
        self.zdtm = Path("/tmp/mosix-bench-zdtm")
        subprocess.run(["cc", "-O2", "-o", str(self.zdtm), str(HERE.parent / "tests/e2e/zdtm/zdtm.c")], check=True)

    def shape(self, n):
        spec = ["root", "tbf", "rate", self.args.rate, "burst", "256kb", "latency", "50ms"]
        subprocess.run(["ip", "netns", "exec", n.ns, "tc", "qdisc", "add", "dev", "eth0"] + spec, check=True)
        show = subprocess.run(["ip", "netns", "exec", n.ns, "tc", "qdisc", "show", "dev", "eth0"],
                              capture_output=True, text=True).stdout
        if "tbf" not in show:
            raise RuntimeError("no tbf on %s eth0: %s" % (n.ns, show))
        return show.strip()

    def raw_tcp(self, src, dst, nbytes):
        """Seconds to send nbytes of random data src -> dst over TCP (a
        receiver in dst's namespace counts them and answers)."""
        recv = ("import socket\ns=socket.socket()\ns.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\n"
                "s.bind((%r,%d)); s.listen(1)\nprint('ready',flush=True)\nc,_=s.accept()\n"
                "b=bytearray(1<<20); n=0\nwhile True:\n    k=c.recv_into(b)\n    if not k: break\n    n+=k\n"
                "c.sendall(str(n).encode()); c.close()\n" % (dst.ip, RAW_PORT))
        send = ("import os,socket,sys,time\nbuf=memoryview(os.urandom(4<<20)); n=%d\n"
                "s=socket.create_connection((%r,%d)); t0=time.monotonic(); left=n\n"
                "while left>0:\n    k=min(left,len(buf)); s.sendall(buf[:k]); left-=k\n"
                "s.shutdown(socket.SHUT_WR); a=b''\nwhile True:\n    x=s.recv(64)\n    if not x: break\n    a+=x\n"
                "w=time.monotonic()-t0\nassert int(a)==n, a\nprint(w)\n" % (nbytes, dst.ip, RAW_PORT))
        r = subprocess.Popen(["ip", "netns", "exec", dst.ns, "/usr/bin/python3", "-c", recv], stdout=subprocess.PIPE)
        assert r.stdout.readline().strip() == b"ready"
        out = subprocess.run(["ip", "netns", "exec", src.ns, "/usr/bin/python3", "-c", send], capture_output=True,
                             text=True, check=True, timeout=600).stdout
        r.wait(30)
        return float(out.strip())

    def start(self, home, mode, mib, cwd):
        out = open(cwd / ("%s-%d.out" % (mode, mib)), "w")
        p = subprocess.Popen(["ip", "netns", "exec", home.ns, str(M.MosixCluster.bin("mosrun")), "--socket",
                              str(home.socket), str(self.zdtm), mode, str(mib)], stdout=out,
                             stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 300
        while "ready" not in Path(out.name).read_text():
            if time.monotonic() > deadline or p.poll() is not None:
                raise RuntimeError("zdtm %s %d did not start" % (mode, mib))
            time.sleep(0.05)
        pid = int(open("/proc/%d/task/%d/children" % (p.pid, p.pid)).read().split()[0])
        return p, pid, Path(out.name)

    def migrate(self, home, pid, where):
        r = subprocess.run(["ip", "netns", "exec", home.ns, str(M.MosixCluster.bin("migrate")), "-v", str(pid), where],
                           capture_output=True, text=True, timeout=600)
        if r.returncode != 0:
            raise RuntimeError("migrate %d %s: %s" % (pid, where, r.stderr))
        m = VERBOSE.search(r.stdout)
        return (int(m.group(1)), int(m.group(2)), float(m.group(3)) / 1000) if m else None

    def finish(self, p, pid, out):
        os.kill(pid, 12)  # SIGUSR2 to the deputy: the workload checks itself
        p.wait(120)
        if not out.read_text().rstrip().endswith("PASS"):
            raise RuntimeError("the workload failed its own check: %s" % out.read_text()[-200:])

    def run(self):
        a = self.args
        res = {"rate": a.rate, "runs": a.runs, "rows": {}}
        with M.MosixCluster(step_ms=500, window=2) as c:
            home, dest = c.one_cluster([1, 2])
            if not M.wait_for(lambda: home.ids() == [1, 2], 30):
                raise RuntimeError("the nodes do not see each other")
            res["tbf"] = self.shape(home)
            cwd = Path(c.dir)
            cases = [("array", a.mib, "incompressible"), ("text", a.mib, "compressible")]
            cases += [("array", m, "freeze") for m in (64, 256, 1024) if m != a.mib]
            for mode, mib, what in cases:
                rows = []
                p, pid, out = self.start(home, mode, mib, cwd)
                for i in range(a.runs):
                    moved, image, frozen = self.migrate(home, pid, "2")
                    raw = self.raw_tcp(home, dest, moved)
                    self.migrate(home, pid, "home")
                    rows.append({"moved": moved, "image": image, "frozen_s": frozen, "raw_s": raw})
                    log("  %s %d MiB run %d: frozen %.3f s (%.0f MB/s), image %.0f MB, raw TCP %.3f s (%.0f MB/s)" % (
                        mode, mib, i + 1, frozen, moved / frozen / 1e6, image / 1e6, raw, moved / raw / 1e6))
                self.finish(p, pid, out)
                res["rows"]["%s-%d" % (mode, mib)] = {"what": what, "runs": rows}
        return res


def summary(res):
    log("\nmigration n1 -> n2, link shaped to %s (tbf), medians of %d runs" % (res["rate"], res["runs"]))
    log("| memory | process MB | image MB | frozen s | migration MB/s | raw TCP MB/s | ratio |")
    log("|---|---|---|---|---|---|---|")
    for key, row in res["rows"].items():
        rs = row["runs"]
        moved = rs[0]["moved"]
        fz = statistics.median(r["frozen_s"] for r in rs)
        raw = statistics.median(r["raw_s"] for r in rs)
        img = statistics.median(r["image"] for r in rs)
        log("| %s (%s) | %.0f | %.0f | %.3f | %.1f | %.1f | %.2fx |" % (
            key, row["what"], moved / 1e6, img / 1e6, fz, moved / fz / 1e6, moved / raw / 1e6, raw / fz))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--rate", default="1gbit", help="tbf rate of the n1 -> n2 link")
    ap.add_argument("--mib", type=int, default=1024, help="memory of the throughput workloads, MiB")
    ap.add_argument("--json", default=None, help="write every run here")
    a = ap.parse_args()
    for b in ("mosixd", "mosrun", "migrate"):
        if not M.MosixCluster.bin(b).exists():
            sys.exit("bench/migration.py: %s is not built in %s (set MRC_BUILD_DIR)" % (b, M.build_dir()))
    if os.geteuid() != 0:
        sys.exit("bench/migration.py: needs root (network namespaces, tc)")
    res = Bench(a).run()
    if a.json:
        Path(a.json).write_text(json.dumps(res, indent=1))
    summary(res)


if __name__ == "__main__":
    main()
