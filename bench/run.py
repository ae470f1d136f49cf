#!/usr/bin/python3
"""mrc benchmarks: issue 2's ratios, measured in one run on the e2e
harness's network-namespace link (see bench/README.md).

    sudo MRC_BUILD_DIR=build /usr/bin/python3 bench/run.py [--size-mib 1024] [--runs 7]

Makes one target (tests/e2e/harness.py: netns + veth + real sshd), then
measures, interleaving the contenders run by run:

 1. `mrc t1 true` vs `ssh t1 true` (wall time, median of --runs each, after
    one warm-up of each; the warm-up deploys mrc-target by SFTP);
 2. cold sequential read of a random --size-mib file:
    - mrc:        file on the head (disk), `mrc t1 dd if=big.bin of=/dev/null bs=1M`
    - ssh cat:    same bytes on the target's /tmp (tmpfs), `ssh t1 cat ... >/dev/null`
    - sshfs-rev:  an sshd on the head's end of the veth; the target mounts the
                  head's data dir with sshfs and dd's the file (same data
                  path as mrc: head disk -> sftp -> link -> FUSE on target)
    - sshfs-fwd:  the head mounts the target's /tmp dir (tmpfs) with sshfs
    - local:      dd of the file on the head itself (the disk's cold rate)
    "cold" = the head's pages of the file are evicted before every run with
    posix_fadvise(POSIX_FADV_DONTNEED), checked with fincore; every sshfs run
    gets a fresh mount, every mrc run is a fresh mount anyway;
 3. sequential write of --size-mib with conv=fsync to the head's disk:
    mrc (-z auto: zeros compress) vs mrc -z off vs sshfs-rev vs local.

Issue 3's figures (each skippable, --skip-X, or pick with --only):
 4. grep -r over a copy of /usr/include in the head's data dir, two passes
    in one job after `echo 3 > drop_caches`: the first pass is the cold
    figure (vs sshfs-rev's first pass on a fresh mount), the second the warm
    one (vs the same two passes run locally on the head);
 5. find -ls over that tree, cold: fresh mrc job vs fresh sshfs-rev mount;
 6. make -j2 of a generated C project (--build-files modules) on the head:
    mrc vs local vs sshfs-rev;
 7. cold read of the text corpus over a link shaped with tbf (--shape-rate,
    both veth ends): mrc -z auto vs -z off vs raw TCP (a python
    sender/receiver pair across the netns) vs ssh cat;
 8. find -ls over a --mem-dirs x --mem-files tree through mrc: wall time and
    peak RSS (VmHWM) of the head's file service and the target's
    mrc-target serve.

Prints a table (MB = 10^6 bytes, like dd) and writes results.json under
--out. --profile adds one extra mrc read whose per-process/per-thread CPU
time is sampled from /proc; --perf also records `perf record -a` then.
Everything the run makes is torn down at the end, also on failure/Ctrl-C.
"""

import argparse
import datetime
import json
import os
import platform
import random
import re
import resource
import shlex
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT / "tests" / "e2e"))
os.environ.setdefault("MRC_BUILD_DIR", str(ROOT / "build"))
import harness as H  # noqa: E402

MB = 1e6
HEAD_SSHD_PORT = 2222
RAW_TCP_PORT = 5201
FIGURES = ("true", "read", "text", "write", "grep", "find", "build", "shaped",
           "mem")
NO_MATCH = "zzzqqq_mrc_bench_no_match"   # a grep pattern in no header
DROP_HOW = "sync; echo 3 > /proc/sys/vm/drop_caches (page cache, dentries " \
    "and inodes of the whole machine: head and target share the kernel)"
DD_RE = re.compile(r"(\d+) bytes .*copied, ([0-9.]+) s")


class BenchError(RuntimeError):
    pass


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def loadavg():
    return Path("/proc/loadavg").read_text().split()[0]


def median(xs):
    return statistics.median(xs) if xs else float("nan")


# ------------------------------------------------------------------ running

def timed(argv, cwd=None, env=None, timeout=600, stdout=subprocess.DEVNULL,
          stdin=subprocess.DEVNULL):
    """Run argv to completion (own process group); returns (rc, wall s,
    stderr text, stdout text or None). Kills the group on timeout."""
    t0 = time.monotonic()
    p = subprocess.Popen(argv, cwd=cwd, env=env, stdin=stdin, stdout=stdout,
                         stderr=subprocess.PIPE, start_new_session=True)
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except OSError:
            pass
        p.communicate()
        raise BenchError("timed out after %ss: %s" % (timeout, " ".join(
            map(shlex.quote, map(str, argv)))))
    wall = time.monotonic() - t0
    err = err.decode("utf-8", "replace")
    if isinstance(out, bytes):
        out = out.decode("utf-8", "replace")
    return p.returncode, wall, err, out


def check(rc, what, err):
    if rc != 0:
        raise BenchError("%s failed (rc=%s):\n%s" % (what, rc, H.tail(err)))


def dd_figures(err):
    """(bytes, seconds) from dd's final statistics line."""
    m = None
    for m in DD_RE.finditer(err):
        pass
    if not m:
        raise BenchError("no dd statistics in:\n" + H.tail(err))
    return int(m.group(1)), float(m.group(2))


class Bench:
    def __init__(self, args):
        self.args = args
        self.size = args.size_mib * 1024 * 1024
        self.h = None
        self.head_sshd = None
        self.mounts = []          # (where: 'head'|'t1', mount point)
        self.results = {}
        self.notes = []
        self.failures = {}        # figure -> error text (figure skipped)
        self.shaped = []          # (netns or None, dev) with our tbf qdisc
        self.on = set(args.figures)
        self.text = None

    # ------------------------------------------------------------ env

    def mrc_env(self):
        e = dict(os.environ)
        e.pop("SSH_AUTH_SOCK", None)
        e["HOME"] = str(self.h.home)
        # a file service of the bench's own (not one shared with other mrc
        # runs of this user on the machine); figure 8 finds it by this path
        e["MRC_RUNTIME_DIR"] = str(self.runtime_dir)
        return e

    def mrc(self, *args, cwd=None, timeout=600, stdout=subprocess.DEVNULL):
        argv = self.h.mrc_argv(*args)
        return timed(argv, cwd=str(cwd or self.data), env=self.mrc_env(),
                     timeout=timeout, stdout=stdout)

    def ssh(self, cmd, timeout=600, opts=()):
        argv = ["ssh", "-F", str(self.h.ssh_config), "-o", "BatchMode=yes"] \
            + list(opts) + ["t1", cmd]
        return timed(argv, env=self.mrc_env(), timeout=timeout)

    def tsh(self, cmd, timeout=600, stdout=subprocess.DEVNULL):
        """sh -c cmd inside t1's mount+net namespaces, timed."""
        argv = ["nsenter", "-t", str(self.h.t1.pid), "-m", "-n", "--",
                "sh", "-c", cmd]
        return timed(argv, timeout=timeout, stdout=stdout)

    def evict(self, path):
        """Drop the head's page cache of path; returns resident bytes after."""
        fd = os.open(str(path), os.O_RDONLY)
        try:
            os.fdatasync(fd)
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)
        cp = subprocess.run(["fincore", "--bytes", "--noheadings", "--output",
                             "RES", str(path)], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)
        try:
            res = int(cp.stdout.split()[0])
        except (IndexError, ValueError):
            return None
        if res > self.size // 100:
            # fall back to the global knob
            subprocess.run(["sh", "-c", "sync; echo 1 > /proc/sys/vm/drop_caches"])
            self.notes.append("posix_fadvise left %d bytes resident; used "
                              "drop_caches" % res)
        return res

    # ------------------------------------------------------------ setup

    def setup(self):
        a = self.args
        self.h = H.Harness(1, label="bench")
        self.h.start()
        self.runtime_dir = self.h.run_dir / "rt"
        self.runtime_dir.mkdir(mode=0o700)
        t = self.h.t1
        log("harness %s: t1 %s (head end %s), setup %.2fs" % (
            self.h.id, t.ip, t.head_ip, self.h.setup_seconds))
        # the harness's target /tmp is a 1 GiB tmpfs: room for the file(s)
        self.need_big = bool(self.on & {"read"}) or a.experiments or \
            a.profile or a.perf
        self.text_mib = a.text_mib if a.text_mib > 0 else \
            (a.shape_text_mib if "shaped" in self.on else 0)
        tmp_mib = (a.size_mib if self.need_big else 0) + self.text_mib + 256
        rc, _, err, _ = self.tsh("mount -o remount,size=%dm /tmp && "
                                 "mkdir -p /tmp/bench /tmp/sshfs-mnt" % tmp_mib)
        check(rc, "remount target /tmp", err)
        self.data = self.h.new_workdir("bench")
        fstype = subprocess.run(["stat", "-f", "-c", "%T", str(self.data)],
                                stdout=subprocess.PIPE, text=True).stdout.strip()
        self.head_fs = fstype
        if fstype in ("tmpfs", "ramfs"):
            self.notes.append("head data dir %s is on %s: 'cold' reads are "
                              "not cold" % (self.data, fstype))
        self.big = self.data / "big.bin"
        if self.text_mib > 0:
            self.make_text()
        if not self.need_big:
            return
        log("making %d MiB of random data in %s (%s) ..." % (
            a.size_mib, self.big, fstype))
        subprocess.run(["sh", "-c", "head -c %d /dev/urandom > %s && sync" % (
            self.size, shlex.quote(str(self.big)))], check=True)
        # the same bytes on the target's own /tmp (tmpfs)
        with open(self.big, "rb") as f:
            cp = subprocess.run(["nsenter", "-t", str(t.pid), "-m", "-n", "--",
                                 "sh", "-c", "cat > /tmp/bench/big.bin"],
                                stdin=f, stderr=subprocess.PIPE, timeout=600)
        if cp.returncode != 0:
            raise BenchError("copy to target failed: %s" % cp.stderr)

    def make_text(self):
        """--text-mib of C headers (compressible text), head and target."""
        self.text = self.data / "text.txt"
        want = self.text_mib * 1024 * 1024
        files = sorted(str(p) for p in Path("/usr/include").rglob("*.h")
                       if p.is_file())
        n = 0
        with open(self.text, "wb") as out:
            while n < want and files:
                for fn in files:
                    try:
                        b = Path(fn).read_bytes()
                    except OSError:
                        continue
                    b = b[:want - n]
                    out.write(b)
                    n += len(b)
                    if n >= want:
                        break
        os.sync()
        with open(self.text, "rb") as f:
            subprocess.run(["nsenter", "-t", str(self.h.t1.pid), "-m", "-n",
                            "--", "sh", "-c", "cat > /tmp/bench/text.txt"],
                           stdin=f, check=True, timeout=600)

    def start_head_sshd(self):
        """An sshd on the head's end of t1's veth, for sshfs from t1."""
        h, t = self.h, self.h.t1
        d = h.run_dir / "bench"
        d.mkdir()
        key = d / "ssh_host_ed25519_key"
        H._run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "head",
                "-f", str(key)])
        pub = " ".join(Path(str(key) + ".pub").read_text().split()[:2])
        (d / "authorized_keys").write_text(
            (h.run_dir / "id_ed25519.pub").read_text())
        (d / "sshd_config").write_text("\n".join([
            "ListenAddress %s" % t.head_ip, "Port %d" % HEAD_SSHD_PORT,
            "PidFile none", "UsePAM no", "StrictModes no",
            "PermitRootLogin prohibit-password",
            "AuthorizedKeysFile %s" % (d / "authorized_keys"),
            "PasswordAuthentication no", "KbdInteractiveAuthentication no",
            "Subsystem sftp internal-sftp", "HostKey %s" % key,
            "UseDNS no", "PrintMotd no", "LogLevel INFO", ""]))
        (d / "known_hosts").write_text("[%s]:%d %s\n" % (
            t.head_ip, HEAD_SSHD_PORT, pub))
        self.head_ssh_config = d / "ssh_config"
        self.head_ssh_config.write_text("\n".join([
            "Host head", "    HostName %s" % t.head_ip,
            "    Port %d" % HEAD_SSHD_PORT, "    User root",
            "    IdentityFile %s" % h.key, "    IdentitiesOnly yes",
            "    UserKnownHostsFile %s" % (d / "known_hosts"),
            "    StrictHostKeyChecking yes", "    BatchMode yes",
            "    ConnectTimeout 5", ""]))
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)
        logf = open(d / "sshd.log", "ab")
        self.head_sshd = subprocess.Popen(
            ["/usr/sbin/sshd", "-D", "-e", "-f", str(d / "sshd_config")],
            stdin=subprocess.DEVNULL, stdout=logf, stderr=logf,
            start_new_session=True)
        logf.close()
        deadline = time.monotonic() + 10
        while True:
            if self.head_sshd.poll() is not None:
                raise BenchError("head sshd exited:\n" +
                                 H.file_tail(d / "sshd.log"))
            try:
                with socket.create_connection((t.head_ip, HEAD_SSHD_PORT), 0.5):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise BenchError("head sshd does not accept")
                time.sleep(0.05)

    def stop_head_sshd(self):
        p = self.head_sshd
        if p is None:
            return
        self.head_sshd = None
        # its session children (sshd: root@notty, internal-sftp) first
        kids = [pid for pid in H._pids() if H._ppid(pid) == p.pid]
        for pid in kids + [q for k in kids for q in H._pids()
                           if H._ppid(q) == k]:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        p.kill()
        p.wait(5)

    # ------------------------------------------------------------ sshfs

    def mount_rev(self):
        """t1 mounts the head's data dir (sshfs over the head's sshd)."""
        rc, _, err, _ = self.tsh(
            "sshfs -F %s head:%s /tmp/sshfs-mnt" % (
                self.head_ssh_config, shlex.quote(str(self.data))), timeout=30)
        check(rc, "sshfs mount on t1", err)
        self.mounts.append(("t1", "/tmp/sshfs-mnt"))

    def mount_fwd(self):
        """The head mounts t1:/tmp/bench (sshfs over t1's sshd)."""
        self.fwd_mnt = self.h.tmp_dir / "sshfs-fwd"
        self.fwd_mnt.mkdir(exist_ok=True)
        rc, _, err, _ = timed(["sshfs", "-F", str(self.h.ssh_config),
                               "-o", "BatchMode=yes",
                               "t1:/tmp/bench", str(self.fwd_mnt)],
                              env=self.mrc_env(), timeout=30)
        check(rc, "sshfs mount on head", err)
        self.mounts.append(("head", str(self.fwd_mnt)))

    def umount(self, where, mp):
        if where == "t1":
            if self.h and self.h.t1.pid:
                subprocess.run(["nsenter", "-t", str(self.h.t1.pid), "-m",
                                "-n", "--", "umount", mp],
                               stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, timeout=30)
        else:
            r = subprocess.run(["umount", mp], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, timeout=30)
            if r.returncode != 0:
                subprocess.run(["umount", "-l", mp], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, timeout=30)
        if (where, mp) in self.mounts:
            self.mounts.remove((where, mp))

    def umount_all(self):
        for where, mp in list(reversed(self.mounts)):
            try:
                self.umount(where, mp)
            except Exception as e:  # keep cleaning
                log("umount %s:%s: %s" % (where, mp, e))

    # ------------------------------------------------------------ benches

    def rec(self, key, **kw):
        self.results.setdefault(key, []).append(kw)

    def bench_true(self):
        n = self.args.runs
        log("1. startup: warm-up, then %d x (mrc t1 true, ssh t1 true)" % n)
        rc, w, err, _ = self.mrc("t1", "true", timeout=120)
        check(rc, "warm-up mrc t1 true (deploys mrc-target)", err)
        self.results["deploy_run_s"] = w
        rc, w, err, _ = self.ssh("true", timeout=60)
        check(rc, "warm-up ssh t1 true", err)
        for i in range(n):
            rc, w, err, _ = self.mrc("t1", "true", timeout=60)
            check(rc, "mrc t1 true", err)
            self.rec("true_mrc", s=w)
            rc, w, err, _ = self.ssh("true", timeout=60)
            check(rc, "ssh t1 true", err)
            self.rec("true_ssh", s=w)
            log("   run %d: mrc %.3fs  ssh %.3fs" % (
                i + 1, self.results["true_mrc"][-1]["s"], w))

    def read_mrc(self, key, name="big.bin", extra=()):
        res = self.evict(self.data / name)
        rc, w, err, _ = self.mrc(*extra, "t1", "dd", "if=" + name,
                                 "of=/dev/null", "bs=1M")
        check(rc, "mrc read", err)
        b, s = dd_figures(err)
        if b != (self.data / name).stat().st_size:
            raise BenchError("mrc dd read %d bytes" % b)
        self.rec(key, s=w, dd_s=s, bytes=b, resident_before=res)
        return w, s

    def bench_read(self):
        n = self.args.io_runs
        mib = self.args.size_mib
        log("2. cold sequential read of %d MiB, %d runs each" % (mib, n))
        for i in range(n):
            # local: the head's disk, cold
            res = self.evict(self.big)
            rc, w, err, _ = timed(["dd", "if=" + str(self.big),
                                   "of=/dev/null", "bs=1M"])
            check(rc, "local dd", err)
            b, s = dd_figures(err)
            self.rec("read_local", s=w, dd_s=s, bytes=b, resident_before=res)
            # mrc, -z auto (default)
            w, s = self.read_mrc("read_mrc")
            # ssh cat of the target's tmpfs copy
            rc, w2, err, _ = self.ssh("cat /tmp/bench/big.bin")
            check(rc, "ssh cat", err)
            self.rec("read_sshcat", s=w2, bytes=self.size)
            # sshfs-rev: t1 reads the head's file through sshfs
            self.evict(self.big)
            self.mount_rev()
            try:
                rc, w3, err, _ = self.tsh(
                    "dd if=/tmp/sshfs-mnt/big.bin of=/dev/null bs=1M")
                check(rc, "sshfs-rev dd", err)
                b3, s3 = dd_figures(err)
                self.rec("read_sshfs_rev", s=w3, dd_s=s3, bytes=b3)
            finally:
                self.umount("t1", "/tmp/sshfs-mnt")
            # sshfs-fwd: the head reads t1's tmpfs copy through sshfs
            self.mount_fwd()
            try:
                rc, w4, err, _ = timed(["dd", "if=%s/big.bin" % self.fwd_mnt,
                                        "of=/dev/null", "bs=1M"])
                check(rc, "sshfs-fwd dd", err)
                b4, s4 = dd_figures(err)
                self.rec("read_sshfs_fwd", s=w4, dd_s=s4, bytes=b4)
            finally:
                self.umount("head", str(self.fwd_mnt))
            # mrc -z off
            w5, s5 = self.read_mrc("read_mrc_zoff", extra=("-z", "off"))
            log("   run %d: mrc %.2fs (dd %.2fs)  mrc -z off %.2fs (dd %.2fs)"
                "  ssh cat %.2fs  sshfs-rev dd %.2fs  sshfs-fwd dd %.2fs"
                "  local dd %.2fs" % (i + 1, w, s, w5, s5, w2, s3, s4,
                                      self.results["read_local"][-1]["dd_s"]))

    def bench_text(self):
        n = self.args.io_runs
        log("2b. cold read of %d MiB of text (C headers), %d runs" % (
            self.args.text_mib, n))
        for i in range(n):
            w, s = self.read_mrc("text_mrc", name="text.txt")
            w2, s2 = self.read_mrc("text_mrc_zoff", name="text.txt",
                                   extra=("-z", "off"))
            rc, w3, err, _ = self.ssh("cat /tmp/bench/text.txt")
            check(rc, "ssh cat text", err)
            self.rec("text_sshcat", s=w3, bytes=self.text.stat().st_size)
            log("   run %d: mrc %.2fs (dd %.2fs)  mrc -z off %.2fs (dd %.2fs)"
                "  ssh cat %.2fs" % (i + 1, w, s, w2, s2, w3))

    def bench_write(self):
        n = self.args.io_runs
        cnt = self.args.size_mib
        out = self.data / "out.bin"
        dd = ["dd", "if=/dev/zero", "of=out.bin", "bs=1M", "count=%d" % cnt,
              "conv=fsync"]
        log("3. sequential write of %d MiB (conv=fsync), %d runs each" % (
            cnt, n))

        def clean():
            if out.exists():
                out.unlink()
            os.sync()

        for i in range(n):
            clean()
            rc, w, err, _ = self.mrc("t1", *dd)
            check(rc, "mrc write", err)
            b, s = dd_figures(err)
            self.rec("write_mrc", s=w, dd_s=s, bytes=b)
            clean()
            rc, w2, err, _ = self.mrc("-z", "off", "t1", *dd)
            check(rc, "mrc -z off write", err)
            b2, s2 = dd_figures(err)
            self.rec("write_mrc_zoff", s=w2, dd_s=s2, bytes=b2)
            clean()
            # Timed like an mrc job: mount (its SSH connect), dd, unmount;
            # dd's own figure is the write alone, as in mrc's dd figure.
            self.mounts.append(("t1", "/tmp/sshfs-mnt"))
            try:
                rc, w3, err, _ = self.tsh(
                    "sshfs -F %s head:%s /tmp/sshfs-mnt && "
                    "dd if=/dev/zero of=/tmp/sshfs-mnt/out.bin bs=1M "
                    "count=%d conv=fsync; rc=$?; umount /tmp/sshfs-mnt; "
                    "exit $rc" % (self.head_ssh_config,
                                  shlex.quote(str(self.data)), cnt))
                check(rc, "sshfs-rev write", err)
                b3, s3 = dd_figures(err)
                self.rec("write_sshfs_rev", s=w3, dd_s=s3, bytes=b3)
            finally:
                self.umount("t1", "/tmp/sshfs-mnt")
            clean()
            rc, w4, err, _ = timed(dd, cwd=str(self.data))
            check(rc, "local write", err)
            b4, s4 = dd_figures(err)
            self.rec("write_local", s=w4, dd_s=s4, bytes=b4)
            clean()
            log("   run %d: mrc %.2fs (dd %.2fs)  mrc -z off %.2fs (dd %.2fs)"
                "  sshfs-rev %.2fs (dd %.2fs)  local dd %.2fs" % (
                    i + 1, w, s, w2, s2, w3, s3, s4))

    # ------------------------------------------------------------ issue 3

    def figure(self, name, fn):
        """Run one of issue 3's figures; a failure is recorded (printed in
        the table and the notes) and the next figure still runs."""
        try:
            fn()
        except BenchError as e:
            self.failures[name] = str(e)
            log("   %s FAILED: %s" % (name, H.tail(str(e), 1500)))

    def drop_caches(self):
        subprocess.run(["sh", "-c", "sync; echo 3 > /proc/sys/vm/drop_caches"],
                       check=True, timeout=300)

    def make_tree(self):
        """A copy of /usr/include in the head's data dir (cp -a)."""
        if getattr(self, "tree", None):
            return
        self.tree = self.data / "inc"
        log("copying /usr/include to %s ..." % self.tree)
        subprocess.run(["cp", "-a", "/usr/include", str(self.tree)],
                       check=True, timeout=600)
        os.sync()
        nfiles = ndirs = nother = nbytes = 0
        for dp, dns, fns in os.walk(self.tree):
            ndirs += 1
            for fn in fns:
                st = os.lstat(os.path.join(dp, fn))
                if (st.st_mode & 0o170000) == 0o100000:
                    nfiles += 1
                    nbytes += st.st_size
                else:
                    nother += 1
        self.results["tree"] = {"src": "/usr/include", "files": nfiles,
                                "dirs": ndirs, "other": nother,
                                "bytes": nbytes, "cache_drop": DROP_HOW}
        log("   %d files, %d dirs, %d symlinks etc., %.0f MB" % (
            nfiles, ndirs, nother, nbytes / MB))

    @staticmethod
    def passes_script(cmd, n):
        """sh script: run cmd n times, print '@T t0 rc1 t1 rc2 t2 ...'
        (date +%s.%N around each pass, inside wherever it runs)."""
        s = ["t0=$(date +%s.%N)"]
        echo = ["$t0"]
        for i in range(1, n + 1):
            s.append("%s; r%d=$?; t%d=$(date +%%s.%%N)" % (cmd, i, i))
            echo.append("$r%d $t%d" % (i, i))
        s.append('echo "@T %s"' % " ".join(echo))
        return "; ".join(s)

    @staticmethod
    def parse_passes(out, what, ok_rcs=(0,), err=""):
        """[seconds of pass 1, pass 2, ...] from passes_script's line."""
        for line in (out or "").splitlines():
            if line.startswith("@T "):
                f = line.split()[1:]
                t = [float(f[0])]
                rcs = []
                for j in range(1, len(f), 2):
                    rcs.append(int(f[j]))
                    t.append(float(f[j + 1]))
                bad = [r for r in rcs if r not in ok_rcs]
                if bad:
                    raise BenchError("%s: a pass exited %s:\n%s" % (
                        what, rcs, H.tail(err)))
                return [t[k + 1] - t[k] for k in range(len(rcs))]
        raise BenchError("%s: no timing line in its output:\n%s\n%s" % (
            what, H.tail(out), H.tail(err)))

    def tree_passes(self, who, cmd, n, ok_rcs=(0,)):
        """Drop the caches, then run cmd n times in a row in one job (mrc),
        one fresh sshfs-rev mount, or locally on the head; returns (list of
        pass seconds, wall seconds of the whole job)."""
        script = self.passes_script(cmd, n)
        if who == "mrc":
            self.drop_caches()
            rc, w, err, out = self.mrc("t1", "sh", "-c", script,
                                       stdout=subprocess.PIPE)
        elif who == "sshfs":
            self.mount_rev()
            try:
                self.drop_caches()
                rc, w, err, out = self.tsh("cd /tmp/sshfs-mnt && " + script,
                                           stdout=subprocess.PIPE)
            finally:
                self.umount("t1", "/tmp/sshfs-mnt")
        else:
            self.drop_caches()
            rc, w, err, out = timed(["sh", "-c", script], cwd=str(self.data),
                                    stdout=subprocess.PIPE)
        check(rc, "%s: %s" % (who, cmd), err)
        return self.parse_passes(out, "%s: %s" % (who, cmd), ok_rcs, err), w

    def bench_grep(self):
        """4. grep -r: cold (pass 1) and warm (pass 2) of one job."""
        self.make_tree()
        n = self.args.tree_runs
        cmd = "grep -r %s inc >/dev/null" % NO_MATCH
        log("4. grep -r over inc/, %d runs: 2 passes per job after "
            "drop_caches (mrc, sshfs-rev, local)" % n)
        for i in range(n):
            line = []
            for who, key in (("mrc", "grep_mrc"), ("sshfs", "grep_sshfs_rev"),
                             ("local", "grep_local")):
                (c, wm), w = self.tree_passes(who, cmd, 2, ok_rcs=(1,))
                self.rec(key, cold_s=c, warm_s=wm, wall_s=w)
                line.append("%s cold %.2fs warm %.3fs" % (who, c, wm))
            log("   run %d: %s" % (i + 1, "  ".join(line)))

    def bench_find(self):
        """5. find -ls, cold (and the warm second pass, for information)."""
        self.make_tree()
        n = self.args.tree_runs
        cmd = "find inc -ls >/dev/null"
        log("5. find -ls over inc/, cold, %d runs (mrc, sshfs-rev, local)" % n)
        for i in range(n):
            line = []
            for who, key in (("mrc", "find_mrc"), ("sshfs", "find_sshfs_rev"),
                             ("local", "find_local")):
                (c, wm), w = self.tree_passes(who, cmd, 2)
                self.rec(key, cold_s=c, warm_s=wm, wall_s=w)
                line.append("%s cold %.3fs warm %.3fs" % (who, c, wm))
            log("   run %d: %s" % (i + 1, "  ".join(line)))

    def bench_build(self):
        """6. make -jN of a generated C project whose sources are on the
        head: mrc vs local vs sshfs-rev; the head's page cache is warm,
        compiler and system headers are each side's own."""
        a = self.args
        proj = self.data / "cproj"
        if not proj.exists():
            gen_cproject(proj, a.build_files)
            os.sync()
        nsrc = len(list((proj / "src").glob("*.c")))
        self.results["build_project"] = {
            "modules": a.build_files, "c_files": nsrc,
            "headers": len(list((proj / "include").glob("*.h"))),
            "bytes": sum(f.stat().st_size for f in proj.rglob("*")
                         if f.is_file()),
            "make": "make -j%d" % a.build_jobs, "cflags": "-O2 -g -Wall -Wextra"}
        mk = ["make", "-s", "-j%d" % a.build_jobs]
        log("6. make -j%d of a generated C project (%d .c files), %d runs "
            "(mrc, local, sshfs-rev)" % (a.build_jobs, nsrc, a.build_runs))

        def clean():
            subprocess.run(["make", "-s", "clean"], cwd=str(proj), check=True,
                           stdout=subprocess.DEVNULL, timeout=60)
            os.sync()

        def built(who):
            app = proj / "app"
            objs = list((proj / "obj").glob("*.o"))
            if not app.exists() or len(objs) != nsrc:
                raise BenchError("%s build: app %s, %d of %d objects" % (
                    who, "present" if app.exists() else "missing", len(objs),
                    nsrc))
            cp = subprocess.run([str(app)], stdout=subprocess.PIPE,
                                text=True, timeout=30)
            return cp.stdout.strip()

        outputs = set()
        for i in range(a.build_runs):
            clean()
            rc, w, err, _ = self.mrc("t1", *mk, cwd=proj, timeout=900)
            check(rc, "mrc t1 make", err)
            outputs.add(built("mrc"))
            self.rec("build_mrc", s=w)
            clean()
            rc, w2, err, _ = timed(mk, cwd=str(proj), timeout=900)
            check(rc, "local make", err)
            outputs.add(built("local"))
            self.rec("build_local", s=w2)
            clean()
            self.mount_rev()
            try:
                rc, w3, err, _ = self.tsh("cd /tmp/sshfs-mnt/cproj && " +
                                          " ".join(mk), timeout=900)
                check(rc, "sshfs-rev make", err)
            finally:
                self.umount("t1", "/tmp/sshfs-mnt")
            outputs.add(built("sshfs-rev"))
            self.rec("build_sshfs_rev", s=w3)
            log("   run %d: mrc %.2fs  local %.2fs  sshfs-rev %.2fs" % (
                i + 1, w, w2, w3))
        clean()
        if len(outputs) != 1:
            raise BenchError("the three builds' programs print different "
                             "results: %s" % sorted(outputs))

    # -------------------------------------------------- 7: shaped link

    def shape_on(self):
        t = self.h.t1
        rate = self.args.shape_rate
        spec = ["root", "tbf", "rate", rate, "burst", "256kb", "latency",
                "50ms"]
        for ns, dev in ((None, t.veth_head), (t.ns, t.veth_target)):
            pre = ["ip", "netns", "exec", ns] if ns else []
            cp = subprocess.run(pre + ["tc", "qdisc", "add", "dev", dev] + spec,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, timeout=30)
            if cp.returncode != 0:
                raise BenchError("tc qdisc add on %s: %s" % (dev, cp.stderr))
            self.shaped.append((ns, dev))
            show = subprocess.run(pre + ["tc", "qdisc", "show", "dev", dev],
                                  stdout=subprocess.PIPE, text=True,
                                  timeout=30).stdout
            if "tbf" not in show:
                raise BenchError("no tbf on %s after adding it: %s" % (
                    dev, show))
            self.results.setdefault("shape_qdiscs", []).append(
                {"netns": ns or "(root)", "dev": dev, "show": show.strip()})

    def shape_off(self):
        for ns, dev in list(reversed(self.shaped)):
            pre = ["ip", "netns", "exec", ns] if ns else []
            try:
                subprocess.run(pre + ["tc", "qdisc", "del", "dev", dev,
                                      "root"], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, timeout=30)
            except Exception as e:  # keep cleaning
                log("tc qdisc del %s: %s" % (dev, e))
            self.shaped.remove((ns, dev))

    def raw_tcp(self, nbytes):
        """Raw TCP head -> t1 across the (shaped) veth: a python receiver in
        t1's netns counts the bytes and answers; the rate is bytes over the
        time from connect to that answer."""
        t = self.h.t1
        recv = ("import socket,sys\n"
                "s=socket.socket()\n"
                "s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\n"
                "s.bind((%r,%d)); s.listen(1); s.settimeout(60)\n"
                "print('ready',flush=True)\n"
                "c,_=s.accept(); c.settimeout(120)\n"
                "b=bytearray(1<<20); n=0\n"
                "while True:\n"
                "    k=c.recv_into(b)\n"
                "    if not k: break\n"
                "    n+=k\n"
                "c.sendall(str(n).encode()); c.close()\n" % (t.ip, RAW_TCP_PORT))
        p = subprocess.Popen(["ip", "netns", "exec", t.ns, "/usr/bin/python3",
                              "-c", recv], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, start_new_session=True)
        try:
            if p.stdout.readline().strip() != b"ready":
                raise BenchError("raw TCP receiver: %s" % p.stderr.read())
            buf = memoryview(os.urandom(4 << 20))
            with socket.create_connection((t.ip, RAW_TCP_PORT), 10) as s:
                s.settimeout(120)
                t0 = time.monotonic()
                left = nbytes
                while left > 0:
                    k = min(left, len(buf))
                    s.sendall(buf[:k])
                    left -= k
                s.shutdown(socket.SHUT_WR)
                ans = b""
                while True:
                    x = s.recv(64)
                    if not x:
                        break
                    ans += x
                w = time.monotonic() - t0
            if int(ans or b"-1") != nbytes:
                raise BenchError("raw TCP receiver got %r of %d bytes" % (
                    ans, nbytes))
            p.wait(10)
            return w
        finally:
            if p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except OSError:
                    pass
                p.wait(5)

    def bench_shaped(self):
        a = self.args
        n = a.io_runs
        size = self.text.stat().st_size
        log("7. link shaped to %s (tbf on both veth ends): cold read of %d "
            "MiB of text, %d runs (raw TCP, mrc -z auto, -z off, ssh cat)" % (
                a.shape_rate, self.text_mib, n))
        self.shape_on()
        try:
            for i in range(n):
                w0 = self.raw_tcp(size)
                self.rec("shaped_raw_tcp", s=w0, bytes=size)
                w, s = self.read_mrc("shaped_mrc", name="text.txt",
                                     extra=("-z", "auto"))
                w2, s2 = self.read_mrc("shaped_mrc_zoff", name="text.txt",
                                       extra=("-z", "off"))
                rc, w3, err, _ = self.ssh("cat /tmp/bench/text.txt")
                check(rc, "ssh cat text (shaped)", err)
                self.rec("shaped_sshcat", s=w3, bytes=size)
                log("   run %d: raw TCP %.0f MB/s  mrc -z auto %.0f MB/s "
                    "(dd %.0f)  -z off %.0f MB/s (dd %.0f)  ssh cat %.0f MB/s"
                    % (i + 1, size / w0 / MB, size / w / MB, size / s / MB,
                       size / w2 / MB, size / s2 / MB, size / w3 / MB))
        finally:
            self.shape_off()

    # -------------------------------------------------- 8: memory

    def service_pids(self):
        """Pids of the bench's own file service (by its command line: the
        socket path is under our MRC_RUNTIME_DIR)."""
        rt = str(self.runtime_dir) + "/"
        out = []
        for pid in H._pids():
            c = H.cmdline(pid)
            if c and "--internal-file-service" in c and rt in c and \
                    H._alive(pid):
                out.append(pid)
        return out

    def bench_mem(self):
        a = self.args
        many = self.data / "many"
        nd, nf = a.mem_dirs, a.mem_files
        if not many.exists():
            log("8. making %d dirs x %d empty files in %s ..." % (nd, nf, many))
            t0 = time.monotonic()
            many.mkdir()
            for d in range(nd):
                dd = many / ("d%04d" % d)
                dd.mkdir()
                for f in range(nf):
                    os.close(os.open(str(dd / ("f%05d" % f)),
                                     os.O_WRONLY | os.O_CREAT, 0o644))
            os.sync()
            log("   made in %.1fs" % (time.monotonic() - t0))
        r = self.mem_traverse(many, nd * nf + nd + 1)
        self.results["mem"] = r
        if r["ok"]:
            r.pop("stderr")
        else:
            self.notes.append(
                "figure 8 (find -ls of %d entries) FAILED: exit status %s "
                "(find's), %s of %d entries listed, file service at %s open "
                "descriptors of its limit %s; stderr: %s" % (
                    r["entries"], r["mrc_rc"], r["listed"], r["entries"],
                    r.get("service_fds_max"), r.get("service_nofile"),
                    err_summary(r.pop("stderr"))))
            why = self.cannot_raise_nofile(a.mem_retry_nofile) \
                if a.mem_retry_nofile > 0 else None
            if why:
                self.results["mem_nofile_skipped"] = why
                self.notes.append("figure 8b (the traversal again with "
                                  "RLIMIT_NOFILE %d) not run: %s" % (
                                      a.mem_retry_nofile, why))
            elif a.mem_retry_nofile > 0:
                r2 = self.mem_traverse(many, r["entries"],
                                       nofile=a.mem_retry_nofile)
                self.results["mem_nofile"] = r2
                if r2["ok"]:
                    r2.pop("stderr")
                else:
                    self.notes.append(
                        "figure 8b (the same with RLIMIT_NOFILE %d) FAILED "
                        "too: exit status %s, %s entries listed; stderr: %s" % (
                            a.mem_retry_nofile, r2["mrc_rc"], r2["listed"],
                            err_summary(r2.pop("stderr"))))

    @staticmethod
    def cannot_raise_nofile(n):
        """Why a child of ours cannot get RLIMIT_NOFILE n (None: it can)."""
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        cp = subprocess.run(
            ["/usr/bin/python3", "-c", "import resource; resource.setrlimit("
             "resource.RLIMIT_NOFILE, (%d, %d))" % (n, n)],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if cp.returncode == 0:
            return None
        return ("this process's limit is %d soft / %d hard and raising it "
                "failed (no CAP_SYS_RESOURCE here?): %s" % (
                    soft, hard, cp.stderr.strip().splitlines()[-1]
                    if cp.stderr.strip() else "rc %d" % cp.returncode))

    def mem_traverse(self, many, entries, nofile=None):
        """One `mrc t1 find . -ls` over the tree, with VmHWM sampled; with
        nofile, mrc (and so the file service it starts) runs with that
        RLIMIT_NOFILE."""
        a = self.args
        # a fresh file service: wait for the one of earlier figures to exit
        # (10 s after its last job), so its VmHWM is this traversal's
        H.wait_for(lambda: not self.service_pids(), 30, 0.2)
        stale = self.service_pids()
        log("8%s. mrc t1 find . -ls over %d entries%s, sampling VmHWM of the "
            "file service%s and mrc-target serve" % (
                "b" if nofile else "", entries,
                " with RLIMIT_NOFILE %d" % nofile if nofile else "",
                " (NOT fresh: %s still up)" % stale if stale else ""))
        # the job's exit status is find's; wc counts what it listed (the
        # status file is on the target's own /tmp, not on the head)
        script = ('f=/tmp/mrc-bench-rc.$$; { find . -ls; echo $? > $f; } | '
                  'wc -l; r=$(cat $f); rm -f $f; exit $r')
        argv = self.h.mrc_argv("t1", "sh", "-c", script)

        def limit():
            resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))
        p = subprocess.Popen(argv, cwd=str(many), env=self.mrc_env(),
                             stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, start_new_session=True,
                             preexec_fn=limit if nofile else None)
        t0 = time.monotonic()
        sam = MemSampler(self, p.pid)
        sam.start()
        try:
            out, err = p.communicate(timeout=a.mem_timeout)
            rc = p.returncode
        except subprocess.TimeoutExpired:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except OSError:
                pass
            out, err = p.communicate()
            rc = "timeout after %ds" % a.mem_timeout
        wall = time.monotonic() - t0
        sam.sample(final=True)  # the service right after the traversal
        sam.stop()
        err = err.decode("utf-8", "replace")
        out = out.decode("utf-8", "replace").strip()
        try:
            listed = int(out.split()[-1])
        except (IndexError, ValueError):
            listed = None
        nerr = len(re.findall(r"^find: ", err, re.M))
        r = {"dirs": a.mem_dirs, "files_per_dir": a.mem_files,
             "entries": entries, "listed": listed, "mrc_rc": rc,
             "find_errors": nerr, "wall_s": wall, "nofile_set": nofile,
             "service_fresh": not stale, "stderr_lines": err.count("\n"),
             "stderr_head": err[:3000], "stderr_tail": H.tail(err, 3000)}
        r.update(sam.report())
        r["ok"] = rc == 0 and listed == entries
        r["stderr"] = err
        log("   %s: wall %.1fs, listed %s of %d, exit status %s, %d find "
            "errors, file service VmHWM %s MiB (%s fds, limit %s), "
            "mrc-target VmHWM %s MiB" % (
                "ok" if r["ok"] else "FAILED", wall, listed, entries, rc, nerr,
                fmt_mib(r.get("service_hwm_kb")), r.get("service_fds_max"),
                r.get("service_nofile"), fmt_mib(r.get("target_hwm_kb"))))
        return r

    # ------------------------------------------------------------ experiments

    def bench_experiments(self):
        """What-ifs for the bottleneck analysis (no source change needed):
        glibc malloc tunables on the head, AES-GCM instead of chacha20,
        two concurrent writers. One run each, cold like the others."""
        log("experiments: malloc tunables, aes128-gcm, 2 writers")
        gcm = "aes128-gcm@openssh.com"
        tun = {"GLIBC_TUNABLES": "glibc.malloc.mmap_threshold=33554432:"
               "glibc.malloc.trim_threshold=536870912"}
        saved = os.environ.get("GLIBC_TUNABLES")

        def with_env(fn):
            os.environ.update(tun)
            try:
                return fn()
            finally:
                if saved is None:
                    os.environ.pop("GLIBC_TUNABLES", None)
                else:
                    os.environ["GLIBC_TUNABLES"] = saved

        for i in range(self.args.io_runs):
            with_env(lambda: self.read_mrc("x_read_mrc_zoff_tunables",
                                           extra=("-z", "off")))
            with_env(lambda: self.read_mrc("x_read_mrc_tunables"))
            self.read_mrc("x_read_mrc_gcm", extra=("-o", "Ciphers=" + gcm))
            with_env(lambda: self.read_mrc(
                "x_read_mrc_zoff_tunables_gcm",
                extra=("-z", "off", "-o", "Ciphers=" + gcm)))
            rc, w, err, _ = self.ssh("cat /tmp/bench/big.bin",
                                     opts=("-c", gcm))
            check(rc, "ssh cat gcm", err)
            self.rec("x_read_sshcat_gcm", s=w, bytes=self.size)
        # writes: one 1 MiB WRITE in flight per writer; two writers
        half = self.args.size_mib // 2
        for i in range(self.args.io_runs):
            for f in ("o1", "o2"):
                if (self.data / f).exists():
                    (self.data / f).unlink()
            os.sync()
            rc, w, err, _ = self.mrc(
                "-z", "off", "t1", "sh", "-c",
                "dd if=/dev/zero of=o1 bs=1M count=%d conv=fsync & "
                "dd if=/dev/zero of=o2 bs=1M count=%d conv=fsync; wait"
                % (half, half))
            check(rc, "mrc 2 writers", err)
            self.rec("x_write_mrc_zoff_2writers", s=w, bytes=2 * half * 1048576)
            for f in ("o1", "o2"):
                if (self.data / f).exists():
                    (self.data / f).unlink()

    # ------------------------------------------------------------ profile

    def bench_profile(self):
        """One extra cold mrc read with CPU time sampled per thread."""
        log("profile: one more cold mrc read, CPU sampled from /proc")
        h, t = self.h, self.h.t1
        self.evict(self.big)
        perf = None
        if self.args.perf:
            self.perf_data = Path(self.args.out) / "perf.data"
            perf = subprocess.Popen(
                ["perf", "record", "-a", "-g", "-F", "499", "-e", "cpu-clock",
                 "-o", str(self.perf_data)], stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL, start_new_session=True)
            time.sleep(1.0)
        argv = h.mrc_argv("t1", "dd", "if=big.bin", "of=/dev/null", "bs=1M")
        t0 = time.monotonic()
        p = subprocess.Popen(argv, cwd=str(self.data), env=self.mrc_env(),
                             stdin=subprocess.DEVNULL,
                             stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, start_new_session=True)
        sampler = CpuSampler(lambda: [p.pid] + [
            x for x in h.target_pids(t) if x != t.pid])
        sampler.start()
        try:
            _, err = p.communicate(timeout=600)
        finally:
            sampler.stop()
            if perf is not None:
                perf.send_signal(signal.SIGINT)
                perf.wait(30)
        wall = time.monotonic() - t0
        err = err.decode("utf-8", "replace")
        check(p.returncode, "profiled mrc read", err)
        b, s = dd_figures(err)
        prof = sampler.report()
        prof.update(wall_s=wall, dd_s=s, bytes=b)
        self.results["profile"] = prof
        if perf is not None:
            rep = subprocess.run(
                ["perf", "report", "-i", str(self.perf_data), "--stdio",
                 "--no-children", "--sort", "comm,dso", "--percent-limit",
                 "0.5"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                text=True)
            (Path(self.args.out) / "perf-comm-dso.txt").write_text(rep.stdout)
            rep = subprocess.run(
                ["perf", "report", "-i", str(self.perf_data), "--stdio",
                 "--no-children", "-g", "none", "--sort", "comm,sym",
                 "--percent-limit", "0.5"], stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL, text=True)
            (Path(self.args.out) / "perf-comm-sym.txt").write_text(rep.stdout)

    # ------------------------------------------------------------ run

    def run(self):
        try:
            self.setup()
            self.start_head_sshd()
            on = self.on
            if "true" in on:
                self.bench_true()
            else:
                rc, w, err, _ = self.mrc("t1", "true", timeout=120)
                check(rc, "warm-up mrc t1 true", err)
            if "read" in on:
                self.bench_read()
            if "text" in on:
                self.bench_text()
            if "write" in on:
                self.bench_write()
            for name, fn in (("grep", self.bench_grep),
                             ("find", self.bench_find),
                             ("build", self.bench_build),
                             ("shaped", self.bench_shaped),
                             ("mem", self.bench_mem)):
                if name in on:
                    self.figure(name, fn)
            if self.args.experiments:
                self.bench_experiments()
            if self.args.profile or self.args.perf:
                self.bench_profile()
        finally:
            self.shape_off()
            self.umount_all()
            self.stop_head_sshd()
            if self.h is not None:
                if self.args.keep_logs:
                    self.h.save_logs(self.args.out)
                self.h.close()


class CpuSampler(threading.Thread):
    """Samples utime+stime of every thread of the given pids every 0.2 s;
    report() = CPU seconds per process and per thread over the window from
    the first to the last sample, and the system-wide /proc/stat split."""

    def __init__(self, pids_fn):
        super().__init__(daemon=True)
        self.pids_fn = pids_fn
        self.first = {}
        self.last = {}
        self.names = {}
        self.halt = threading.Event()
        self.hz = os.sysconf("SC_CLK_TCK")
        self.t_first = self.t_last = None
        self.stat_first = self.stat_last = None

    @staticmethod
    def sysstat():
        f = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
        return [int(x) for x in f]

    def sample(self):
        now = time.monotonic()
        st = self.sysstat()
        for pid in self.pids_fn():
            pcomm = H.cmdline(pid)
            try:
                tids = os.listdir("/proc/%d/task" % pid)
            except OSError:
                continue
            for tid in tids:
                try:
                    s = Path("/proc/%d/task/%s/stat" % (pid, tid)).read_text()
                except OSError:
                    continue
                comm = s[s.index("(") + 1:s.rindex(")")]
                f = s[s.rindex(")") + 2:].split()
                ticks = (int(f[11]), int(f[12]))   # utime, stime
                key = (pid, int(tid))
                if key not in self.first:
                    # a thread born after the first sample starts at 0
                    self.first[key] = ticks if self.t_first is None \
                        else (0, 0)
                self.last[key] = ticks
                # keep the first good name (an exiting process has none)
                if pcomm or key not in self.names:
                    self.names[key] = ((pcomm or "(%s)" % comm)[:60], comm)
        if self.t_first is None:
            self.t_first, self.stat_first = now, st
        self.t_last, self.stat_last = now, st

    def run(self):
        while not self.halt.is_set():
            self.sample()
            self.halt.wait(0.2)

    def stop(self):
        self.halt.set()
        self.join(5)

    def report(self):
        win = (self.t_last or 0) - (self.t_first or 0)
        per_thread = []
        per_proc = {}
        for key, (u1, s1) in self.last.items():
            u0, s0 = self.first[key]
            u, s = (u1 - u0) / self.hz, (s1 - s0) / self.hz
            pc, comm = self.names[key]
            per_thread.append({"pid": key[0], "tid": key[1], "proc": pc,
                               "thread": comm, "user_s": u, "sys_s": s})
            pp = per_proc.setdefault(key[0], {"pid": key[0], "proc": pc,
                                              "user_s": 0.0, "sys_s": 0.0,
                                              "threads": 0})
            pp["user_s"] += u
            pp["sys_s"] += s
            pp["threads"] += 1
        per_thread.sort(key=lambda d: -(d["user_s"] + d["sys_s"]))
        procs = sorted(per_proc.values(),
                       key=lambda d: -(d["user_s"] + d["sys_s"]))
        names = ["user", "nice", "system", "idle", "iowait", "irq",
                 "softirq", "steal"]
        sysd = {}
        if self.stat_first and self.stat_last:
            d = [b - a for a, b in zip(self.stat_first, self.stat_last)]
            for i, nm in enumerate(names):
                if i < len(d):
                    sysd[nm + "_s"] = d[i] / self.hz
        return {"window_s": win, "procs": procs,
                "threads": [x for x in per_thread
                            if x["user_s"] + x["sys_s"] > 0][:25],
                "system": sysd}


def proc_status(pid):
    """{'VmHWM': kB, 'VmRSS': kB, ...} of /proc/pid/status (empty if gone)."""
    d = {}
    try:
        for line in Path("/proc/%d/status" % pid).read_text().splitlines():
            k, _, v = line.partition(":")
            if k in ("VmHWM", "VmRSS", "VmSize", "Threads"):
                d[k] = int(v.split()[0])
    except (OSError, ValueError, IndexError):
        pass
    return d


def nofile_limit(pid):
    try:
        for line in Path("/proc/%d/limits" % pid).read_text().splitlines():
            if line.startswith("Max open files"):
                f = line.split()
                return "%s soft / %s hard" % (f[3], f[4])
    except (OSError, IndexError):
        pass
    return None


def err_summary(err, n=3):
    """The first n lines of err and how many lines there were."""
    lines = [x for x in err.splitlines() if x.strip()]
    if not lines:
        return "(empty)"
    return "%d lines, first %s" % (len(lines), " | ".join(lines[:n]))


def fmt_mib(kb):
    return "%.1f" % (kb / 1024.0) if isinstance(kb, (int, float)) else "-"


class MemSampler(threading.Thread):
    """Figure 8: VmHWM/VmRSS of the bench's file service, of t1's
    mrc-target serve and of the mrc client every 0.1 s (pids are looked up
    again only while missing; open descriptors of the service counted every
    second)."""

    def __init__(self, bench, mrc_pid):
        super().__init__(daemon=True)
        self.b = bench
        self.mrc_pid = mrc_pid
        self.t0 = time.monotonic()
        self.halt = threading.Event()
        self.svc = []
        self.tgt = []
        self.last_scan = 0.0
        self.last_fds = 0.0
        self.samples = []
        self.peak = {"service_hwm_kb": None, "service_rss_max_kb": None,
                     "target_hwm_kb": None, "target_rss_max_kb": None,
                     "mrc_hwm_kb": None, "service_fds_max": None}
        self.service_nofile = None
        self.service_pid = None
        self.target_pid = None
        self.lock = threading.Lock()

    def _max(self, k, v):
        if v is not None and (self.peak[k] is None or v > self.peak[k]):
            self.peak[k] = v

    def sample(self, final=False):
        with self.lock:
            now = time.monotonic()
            # look pids up again every 0.5 s (every 0.1 s while missing);
            # keep every one seen (a fork of mrc-target serve about to exec
            # the job matches too: the peak is the max over all)
            if now - self.last_scan > (0.5 if self.svc and self.tgt else 0.1):
                self.last_scan = now
                for pid in self.b.service_pids():
                    if pid not in self.svc:
                        self.svc.append(pid)
                        if self.service_pid is None:
                            self.service_pid = pid
                            self.service_nofile = nofile_limit(pid)
                for pid, _ in self.b.h.target_procs(
                        self.b.h.t1, r"mrc-target.*\bserve\b"):
                    if pid not in self.tgt:
                        self.tgt.append(pid)
                        if self.target_pid is None:
                            self.target_pid = pid
            row = {"t": round(now - self.t0, 2)}
            for role, pids in (("service", self.svc), ("target", self.tgt)):
                alive = []
                for pid in pids:
                    st = proc_status(pid)
                    if not st:
                        continue
                    alive.append(pid)
                    self._max(role + "_hwm_kb", st.get("VmHWM"))
                    self._max(role + "_rss_max_kb", st.get("VmRSS"))
                    row[role + "_rss_kb"] = st.get("VmRSS")
                    row[role + "_hwm_kb"] = st.get("VmHWM")
                if role == "service":
                    self.svc = alive
                    if alive and (final or now - self.last_fds >= 1.0):
                        self.last_fds = now
                        try:
                            n = len(os.listdir("/proc/%d/fd" % alive[0]))
                            row["service_fds"] = n
                            self._max("service_fds_max", n)
                        except OSError:
                            pass
                else:
                    self.tgt = alive
            st = proc_status(self.mrc_pid)
            self._max("mrc_hwm_kb", st.get("VmHWM"))
            if len(row) > 1:
                self.samples.append(row)

    def run(self):
        while not self.halt.is_set():
            self.sample()
            self.halt.wait(0.1)

    def stop(self):
        self.halt.set()
        self.join(5)

    def report(self):
        r = dict(self.peak)
        r.update(service_pid=self.service_pid, target_pid=self.target_pid,
                 service_nofile=self.service_nofile, samples=self.samples)
        return r


SYS_HEADERS = ["stdio.h", "stdlib.h", "string.h", "math.h", "stdint.h",
               "ctype.h", "errno.h", "time.h", "stdarg.h", "limits.h",
               "assert.h", "unistd.h", "fcntl.h", "sys/stat.h", "sys/types.h",
               "pthread.h", "signal.h", "inttypes.h", "stdbool.h", "float.h"]


def gen_cproject(root, nfiles, seed=20261201):
    """Figure 6's project: nfiles modules src/modNNN.c (each ~200 lines:
    hashing, qsort, statistics; 8 random system headers plus proj.h, its
    own and 3 other modules' headers), include/*.h, src/main.c calling every
    module, and a Makefile (obj/%.o with -MMD, linked into ./app, which
    prints one hash: the three builds must agree). Deterministic."""
    rnd = random.Random(seed)
    root = Path(root)
    (root / "src").mkdir(parents=True, exist_ok=True)
    (root / "include").mkdir(exist_ok=True)
    (root / "include" / "proj.h").write_text(
        "#ifndef PROJ_H\n#define PROJ_H\n#include <stddef.h>\n"
        "#include <stdint.h>\n"
        "typedef struct { uint64_t a, b; double x; char name[32]; } proj_rec;\n"
        "typedef int (*proj_fn)(proj_rec *, size_t);\n"
        "#define PROJ_MIN(a, b) ((a) < (b) ? (a) : (b))\n"
        "#define PROJ_MAX(a, b) ((a) > (b) ? (a) : (b))\n"
        "uint64_t proj_mix(uint64_t h, uint64_t v);\n#endif\n")
    for i in range(nfiles):
        (root / "include" / ("mod%03d.h" % i)).write_text(
            "#ifndef MOD%03d_H\n#define MOD%03d_H\n#include \"proj.h\"\n"
            "uint64_t mod%03d_entry(uint64_t seed);\n"
            "int mod%03d_sort(proj_rec *r, size_t n);\n"
            "double mod%03d_stat(const double *v, size_t n);\n#endif\n"
            % (i, i, i, i, i))
    for i in range(nfiles):
        inc = rnd.sample(SYS_HEADERS, 8)
        deps = sorted(set(rnd.randrange(nfiles) for _ in range(3)) - {i})
        L = ["/* generated module %d */" % i]
        L += ["#include <%s>" % h for h in inc]
        L += ["#include <stdio.h>", "#include <stdlib.h>",
              "#include <string.h>", "#include <math.h>", "#include <ctype.h>",
              '#include "proj.h"', '#include "mod%03d.h"' % i]
        L += ['#include "mod%03d.h"' % d for d in deps]
        L.append("static const uint32_t tab%d[64] = {%s};" % (
            i, ", ".join(str(rnd.getrandbits(31)) for _ in range(64))))
        for k in range(6):
            L.append("""
static uint64_t h%(i)d_%(k)d(uint64_t x, const char *s)
{
    uint64_t h = %(c)du ^ x;
    for (size_t j = 0; s[j]; j++) {
        h ^= (unsigned char)s[j];
        h *= 1099511628211u;
        h = (h << %(r)d) | (h >> (64 - %(r)d));
        if (isalpha((unsigned char)s[j]))
            h += tab%(i)d[(j + %(k)d) & 63];
    }
    switch (h & 7) {
    case 0: h += %(k)d; break;
    case 1: h ^= h >> 17; break;
    case 2: h *= 3; break;
    case 3: h -= tab%(i)d[h & 63]; break;
    default: h = proj_mix(h, x); break;
    }
    return h;
}""" % dict(i=i, k=k, c=rnd.getrandbits(40), r=rnd.randrange(3, 60)))
        L.append("""
static int cmp%(i)d(const void *a, const void *b)
{
    const proj_rec *x = a, *y = b;
    if (x->a != y->a)
        return x->a < y->a ? -1 : 1;
    return strcmp(x->name, y->name);
}

int mod%(i)03d_sort(proj_rec *r, size_t n)
{
    qsort(r, n, sizeof *r, cmp%(i)d);
    for (size_t j = 1; j < n; j++)
        if (cmp%(i)d(&r[j - 1], &r[j]) > 0)
            return -1;
    return 0;
}

double mod%(i)03d_stat(const double *v, size_t n)
{
    double m = 0, s = 0;
    for (size_t j = 0; j < n; j++)
        m += v[j];
    m = n ? m / n : 0;
    for (size_t j = 0; j < n; j++)
        s += (v[j] - m) * (v[j] - m);
    return n > 1 ? sqrt(s / (n - 1)) : 0;
}

uint64_t mod%(i)03d_entry(uint64_t seed)
{
    proj_rec r[16];
    double v[16];
    char buf[64];
    uint64_t h = seed;
    for (int j = 0; j < 16; j++) {
        snprintf(buf, sizeof buf, "m%(i)d-%%d-%%llu", j, (unsigned long long)h);
        h = h%(i)d_%(a)d(h, buf) ^ h%(i)d_%(b)d(seed, buf);
        r[j].a = h %% 1000;
        r[j].b = h;
        r[j].x = (double)(h %% 10007) / 7.0;
        v[j] = r[j].x;
        snprintf(r[j].name, sizeof r[j].name, "%%.31s", buf);
    }
    if (mod%(i)03d_sort(r, 16) != 0)
        return 0;
    h ^= (uint64_t)(mod%(i)03d_stat(v, 16) * 1000.0);
    h = h%(i)d_%(c)d(h, r[0].name);
%(calls)s    return h;
}
""" % dict(i=i, a=rnd.randrange(6), b=rnd.randrange(6), c=rnd.randrange(6),
           calls="".join("    h += h%d_%d(h, \"x\");\n" % (i, k)
                         for k in range(6))))
        (root / "src" / ("mod%03d.c" % i)).write_text("\n".join(L) + "\n")
    calls = "".join("    h = proj_mix(h, mod%03d_entry(h));\n" % i
                    for i in range(nfiles))
    (root / "src" / "main.c").write_text(
        "#include <stdio.h>\n#include <inttypes.h>\n#include \"proj.h\"\n" +
        "".join('#include "mod%03d.h"\n' % i for i in range(nfiles)) +
        "uint64_t proj_mix(uint64_t h, uint64_t v)\n{\n"
        "    h ^= v + 0x9e3779b97f4a7c15u + (h << 6) + (h >> 2);\n"
        "    return h;\n}\n"
        "int main(void)\n{\n    uint64_t h = 1;\n" + calls +
        "    printf(\"%016\" PRIx64 \"\\n\", h);\n    return 0;\n}\n")
    (root / "Makefile").write_text(
        "CC ?= cc\nCFLAGS ?= -O2 -g -Wall -Wextra\n"
        "SRCS := $(wildcard src/*.c)\n"
        "OBJS := $(SRCS:src/%.c=obj/%.o)\n\n"
        "app: $(OBJS)\n\t$(CC) -o $@ $(OBJS) -lm -lpthread\n\n"
        "obj/%.o: src/%.c | obj\n"
        "\t$(CC) $(CFLAGS) -Iinclude -MMD -MP -c $< -o $@\n\n"
        "obj:\n\tmkdir -p obj\n\n"
        "clean:\n\trm -rf obj app\n\n"
        "-include $(OBJS:.o=.d)\n.PHONY: clean\n")


# ---------------------------------------------------------------- report

def summarize(b):
    r = b.results
    size = b.size
    S = {}

    def med(key, field="s"):
        return median([x[field] for x in r.get(key, [])])

    def rate(key, field="s"):
        xs = r.get(key, [])
        if not xs:
            return float("nan")
        return median([x["bytes"] / x[field] / MB for x in xs])

    if "true_mrc" in r:
        S["true_mrc_s"] = med("true_mrc")
        S["true_ssh_s"] = med("true_ssh")
        S["true_ratio"] = S["true_mrc_s"] / S["true_ssh_s"]
    if "read_mrc" in r:
        for k in ("read_mrc", "read_mrc_zoff"):
            S[k + "_wall_MBps"] = rate(k)
            S[k + "_dd_MBps"] = rate(k, "dd_s")
        S["read_sshcat_MBps"] = rate("read_sshcat")
        S["read_sshfs_rev_MBps"] = rate("read_sshfs_rev", "dd_s")
        S["read_sshfs_fwd_MBps"] = rate("read_sshfs_fwd", "dd_s")
        S["read_local_MBps"] = rate("read_local", "dd_s")
        S["read_ratio_sshcat"] = S["read_mrc_wall_MBps"] / S["read_sshcat_MBps"]
        S["read_ratio_sshcat_dd"] = S["read_mrc_dd_MBps"] / S["read_sshcat_MBps"]
        S["read_ratio_sshfs"] = S["read_mrc_wall_MBps"] / S["read_sshfs_rev_MBps"]
        S["read_ratio_sshfs_dd"] = S["read_mrc_dd_MBps"] / S["read_sshfs_rev_MBps"]
        S["read_ratio_sshfs_fwd"] = S["read_mrc_wall_MBps"] / S["read_sshfs_fwd_MBps"]
    if "text_mrc" in r:
        for k in ("text_mrc", "text_mrc_zoff"):
            S[k + "_wall_MBps"] = rate(k)
            S[k + "_dd_MBps"] = rate(k, "dd_s")
        S["text_sshcat_MBps"] = rate("text_sshcat")
    if "write_mrc" in r:
        for k in ("write_mrc", "write_mrc_zoff"):
            S[k + "_wall_MBps"] = rate(k)
            S[k + "_dd_MBps"] = rate(k, "dd_s")
        S["write_sshfs_rev_MBps"] = rate("write_sshfs_rev", "dd_s")
        S["write_sshfs_rev_wall_MBps"] = rate("write_sshfs_rev")
        S["write_local_MBps"] = rate("write_local", "dd_s")
        # like for like: dd's figure vs dd's figure, mount-to-unmount wall
        # vs the same
        S["write_ratio_sshfs"] = S["write_mrc_dd_MBps"] / S["write_sshfs_rev_MBps"]
        S["write_ratio_sshfs_wall"] = S["write_mrc_wall_MBps"] / S["write_sshfs_rev_wall_MBps"]
        S["write_ratio_sshfs_zoff"] = S["write_mrc_zoff_dd_MBps"] / S["write_sshfs_rev_MBps"]
        S["write_ratio_sshfs_zoff_wall"] = S["write_mrc_zoff_wall_MBps"] / S["write_sshfs_rev_wall_MBps"]
    for fig in ("grep", "find"):
        if fig + "_mrc" in r:
            for who in ("mrc", "sshfs_rev", "local"):
                for ph in ("cold", "warm"):
                    S["%s_%s_%s_s" % (fig, who, ph)] = med(
                        "%s_%s" % (fig, who), ph + "_s")
            for ph in ("cold", "warm"):
                S["%s_%s_ratio_local" % (fig, ph)] = \
                    S["%s_mrc_%s_s" % (fig, ph)] / S["%s_local_%s_s" % (fig, ph)]
                S["%s_%s_ratio_sshfs" % (fig, ph)] = \
                    S["%s_mrc_%s_s" % (fig, ph)] / \
                    S["%s_sshfs_rev_%s_s" % (fig, ph)]
    if "build_mrc" in r:
        for who in ("mrc", "local", "sshfs_rev"):
            S["build_%s_s" % who] = med("build_" + who)
        S["build_ratio_local"] = S["build_mrc_s"] / S["build_local_s"]
        S["build_ratio_sshfs"] = S["build_mrc_s"] / S["build_sshfs_rev_s"]
        S["build_sshfs_ratio_local"] = S["build_sshfs_rev_s"] / S["build_local_s"]
    if "shaped_mrc" in r:
        S["shaped_raw_tcp_MBps"] = rate("shaped_raw_tcp")
        for k in ("shaped_mrc", "shaped_mrc_zoff"):
            S[k + "_wall_MBps"] = rate(k)
            S[k + "_dd_MBps"] = rate(k, "dd_s")
        S["shaped_sshcat_MBps"] = rate("shaped_sshcat")
        S["shaped_ratio_raw"] = S["shaped_mrc_wall_MBps"] / S["shaped_raw_tcp_MBps"]
        S["shaped_ratio_raw_dd"] = S["shaped_mrc_dd_MBps"] / S["shaped_raw_tcp_MBps"]
        S["shaped_zoff_ratio_raw"] = S["shaped_mrc_zoff_wall_MBps"] / \
            S["shaped_raw_tcp_MBps"]
    if "mem" in r:
        m = r["mem"]
        for k in ("wall_s", "ok", "mrc_rc", "find_errors", "listed",
                  "entries", "service_hwm_kb", "target_hwm_kb", "mrc_hwm_kb",
                  "service_fds_max", "service_nofile"):
            S["mem_" + k] = m.get(k)
            if "mem_nofile" in r:
                S["mem_nofile_" + k] = r["mem_nofile"].get(k)
    X = [("x_read_mrc_zoff_tunables", "s"), ("x_read_mrc_tunables", "s"),
         ("x_read_mrc_gcm", "s"), ("x_read_mrc_zoff_tunables_gcm", "s"),
         ("x_read_sshcat_gcm", "s"), ("x_write_mrc_zoff_2writers", "s")]
    for k, f in X:
        if k in r:
            S[k + "_wall_MBps"] = rate(k)
            if "dd_s" in r[k][0]:
                S[k + "_dd_MBps"] = rate(k, "dd_s")
    return S


def met(ratio, target):
    """'yes'/'no' for a target like '<=2x', '>=0.9x', '>1x'; '' if none."""
    m = re.match(r"^(<=|>=|<|>)([0-9.]+)x$", target or "")
    if not m or not isinstance(ratio, float) or ratio != ratio:
        return ""
    v = float(m.group(2))
    ok = {"<=": ratio <= v, ">=": ratio >= v, "<": ratio < v,
          ">": ratio > v}[m.group(1)]
    return "yes" if ok else "no"


def print_report(b, S, meta):
    p = print
    a = b.args
    p("")
    p("mrc benchmarks  %s  host %s  kernel %s  %d cores" % (
        meta["date"], meta["host"], meta["kernel"], meta["cores"]))
    p("load avg (1 min) at start %s, at end %s" % (meta["load_start"],
                                                   meta["load_end"]))
    p("link: veth between the root netns (head) and netns %s (t1, real sshd)"
      % meta["netns"])
    p("MB = 10^6 bytes. Medians. 'wall' = whole command incl. SSH connect; "
      "'dd' = dd's own figure.")
    p("")
    p("targets: rows 1-3 DESIGN section 10 (issue 2), rows 4-8 issue 3; "
      "'-': none set")
    p("%-56s %12s %12s %8s %8s %5s" % ("figure", "mrc", "peer", "ratio",
                                       "target", "met?"))

    def row(name, mine, peer, ratio, target, fmt="%.1f"):
        f = lambda v: (fmt % v) if isinstance(v, (int, float)) and \
            not isinstance(v, bool) and v == v else ("-" if v is None or
                                                     isinstance(v, float)
                                                     else str(v))
        p("%-56s %12s %12s %8s %8s %5s" % (
            name, f(mine), f(peer), ("%.2fx" % ratio) if ratio == ratio
            else "-", target, met(ratio, target)))

    def failed(fig, title):
        if fig in b.failures:
            p("%-56s FAILED: %s" % (title, b.failures[fig].strip().splitlines()
                                    [0][:120]))
            return True
        return False
    if "true_ratio" in S:
        row("1. `mrc t1 true` vs `ssh t1 true`, s (n=%d)" % a.runs,
            S["true_mrc_s"], S["true_ssh_s"], S["true_ratio"], "<=1.2x",
            fmt="%.3f")
    if "read_ratio_sshcat" in S:
        mib = a.size_mib
        row("2. read %d MiB cold, MB/s: mrc wall vs ssh cat" % mib,
            S["read_mrc_wall_MBps"], S["read_sshcat_MBps"],
            S["read_ratio_sshcat"], ">=0.9x")
        row("   mrc dd-reported rate vs ssh cat",
            S["read_mrc_dd_MBps"], S["read_sshcat_MBps"],
            S["read_ratio_sshcat_dd"], ">=0.9x")
        row("   mrc wall vs sshfs-rev (t1 mounts head)",
            S["read_mrc_wall_MBps"], S["read_sshfs_rev_MBps"],
            S["read_ratio_sshfs"], "-")
        row("   mrc dd vs sshfs-rev dd",
            S["read_mrc_dd_MBps"], S["read_sshfs_rev_MBps"],
            S["read_ratio_sshfs_dd"], "-")
        row("   mrc wall vs sshfs-fwd (head mounts t1 tmpfs)",
            S["read_mrc_wall_MBps"], S["read_sshfs_fwd_MBps"],
            S["read_ratio_sshfs_fwd"], "-")
        row("   mrc -z off: wall / dd",
            S["read_mrc_zoff_wall_MBps"], S["read_mrc_zoff_dd_MBps"],
            float("nan"), "-")
        row("   head disk, local cold dd (ceiling for mrc)",
            S["read_local_MBps"], float("nan"), float("nan"), "-")
    if "text_mrc_wall_MBps" in S:
        row("2b. read %d MiB text: mrc -z auto wall vs ssh cat" % a.text_mib,
            S["text_mrc_wall_MBps"], S["text_sshcat_MBps"],
            S["text_mrc_wall_MBps"] / S["text_sshcat_MBps"], "-")
        row("    mrc -z off wall vs ssh cat",
            S["text_mrc_zoff_wall_MBps"], S["text_sshcat_MBps"],
            S["text_mrc_zoff_wall_MBps"] / S["text_sshcat_MBps"], "-")
    if "write_ratio_sshfs" in S:
        row("3. write %d MiB fsync, MB/s: mrc dd vs sshfs-rev dd" % a.size_mib,
            S["write_mrc_dd_MBps"], S["write_sshfs_rev_MBps"],
            S["write_ratio_sshfs"], ">=1.5x")
        row("   wall (mrc job vs sshfs mount+dd+umount)",
            S["write_mrc_wall_MBps"], S["write_sshfs_rev_wall_MBps"],
            S["write_ratio_sshfs_wall"], ">=1.5x")
        row("   mrc -z off dd vs sshfs-rev dd",
            S["write_mrc_zoff_dd_MBps"], S["write_sshfs_rev_MBps"],
            S["write_ratio_sshfs_zoff"], ">=1.5x")
        row("   mrc -z off wall vs sshfs-rev wall",
            S["write_mrc_zoff_wall_MBps"], S["write_sshfs_rev_wall_MBps"],
            S["write_ratio_sshfs_zoff_wall"], ">=1.5x")
        row("   head disk, local write+fsync (ceiling)",
            S["write_local_MBps"], float("nan"), float("nan"), "-")
    tr = b.results.get("tree", {})
    if not failed("grep", "4. grep -r over /usr/include copy"):
        if "grep_warm_ratio_local" in S:
            row("4. grep -r warm (2nd pass in one job), s: mrc vs local",
                S["grep_mrc_warm_s"], S["grep_local_warm_s"],
                S["grep_warm_ratio_local"], "<=2x", fmt="%.3f")
            row("   warm: mrc vs sshfs-rev (2nd pass on its mount)",
                S["grep_mrc_warm_s"], S["grep_sshfs_rev_warm_s"],
                S["grep_warm_ratio_sshfs"], "-", fmt="%.3f")
            row("4b. grep -r cold (1st pass), s: mrc vs sshfs-rev",
                S["grep_mrc_cold_s"], S["grep_sshfs_rev_cold_s"],
                S["grep_cold_ratio_sshfs"], "-", fmt="%.3f")
            row("    cold: mrc vs local cold (the head's disk)",
                S["grep_mrc_cold_s"], S["grep_local_cold_s"],
                S["grep_cold_ratio_local"], "-", fmt="%.3f")
    if not failed("find", "5. find -ls"):
        if "find_cold_ratio_sshfs" in S:
            row("5. find -ls cold, %d entries, s: mrc vs sshfs-rev" % (
                tr.get("files", 0) + tr.get("dirs", 0) + tr.get("other", 0)),
                S["find_mrc_cold_s"], S["find_sshfs_rev_cold_s"],
                S["find_cold_ratio_sshfs"], "<=0.5x", fmt="%.3f")
            row("   cold: mrc vs local cold",
                S["find_mrc_cold_s"], S["find_local_cold_s"],
                S["find_cold_ratio_local"], "-", fmt="%.3f")
            row("   warm (2nd pass): mrc vs sshfs-rev",
                S["find_mrc_warm_s"], S["find_sshfs_rev_warm_s"],
                S["find_warm_ratio_sshfs"], "-", fmt="%.3f")
    if not failed("build", "6. make of a generated C project"):
        if "build_ratio_local" in S:
            bp = b.results.get("build_project", {})
            row("6. make -j%d, %d C files on the head, s: mrc vs local" % (
                a.build_jobs, bp.get("c_files", 0)),
                S["build_mrc_s"], S["build_local_s"], S["build_ratio_local"],
                "-", fmt="%.2f")
            row("   mrc vs sshfs-rev (make on t1 in the sshfs mount)",
                S["build_mrc_s"], S["build_sshfs_rev_s"],
                S["build_ratio_sshfs"], "-", fmt="%.2f")
            row("   sshfs-rev vs local",
                S["build_sshfs_rev_s"], S["build_local_s"],
                S["build_sshfs_ratio_local"], "-", fmt="%.2f")
    if not failed("shaped", "7. text over a shaped link"):
        if "shaped_ratio_raw" in S:
            row("7. %s link, %d MiB text cold, MB/s: -z auto vs raw TCP" % (
                a.shape_rate, b.text_mib),
                S["shaped_mrc_wall_MBps"], S["shaped_raw_tcp_MBps"],
                S["shaped_ratio_raw"], ">1x")
            row("   -z auto dd-reported rate vs raw TCP",
                S["shaped_mrc_dd_MBps"], S["shaped_raw_tcp_MBps"],
                S["shaped_ratio_raw_dd"], ">1x")
            row("   -z off wall vs raw TCP",
                S["shaped_mrc_zoff_wall_MBps"], S["shaped_raw_tcp_MBps"],
                S["shaped_zoff_ratio_raw"], "-")
            row("   ssh t1 cat of the text vs raw TCP",
                S["shaped_sshcat_MBps"], S["shaped_raw_tcp_MBps"],
                S["shaped_sshcat_MBps"] / S["shaped_raw_tcp_MBps"], "-")
    if not failed("mem", "8. find -ls of a big tree"):
        for key, num in (("mem", "8."), ("mem_nofile", "8b.")):
            m = b.results.get(key)
            if not m:
                continue
            nan = float("nan")
            title = "%s mrc t1 find . -ls, %d entries%s: wall s" % (
                num, m["entries"], ", NOFILE %d" % m["nofile_set"]
                if m["nofile_set"] else "")
            if m["ok"]:
                row(title, m["wall_s"], nan, nan, "-", fmt="%.1f")
            else:
                p("%-56s %12.1f FAILED: exit %s, %d find errors, listed %s"
                  % (title, m["wall_s"], m["mrc_rc"], m["find_errors"],
                     m["listed"]))
            row("   peak RSS (VmHWM) of the head's file service, MiB",
                fmt_mib(m.get("service_hwm_kb")), nan, nan, "-")
            row("   peak RSS (VmHWM) of t1's mrc-target serve, MiB",
                fmt_mib(m.get("target_hwm_kb")), nan, nan, "-")
            p("   file service: %s open fds at most, limit %s; %s" % (
                m.get("service_fds_max"), m.get("service_nofile"),
                "fresh process" if m.get("service_fresh")
                else "NOT fresh (VmHWM includes earlier figures)"))
    if tr:
        p("rows 4-5: a copy of /usr/include in the head's data dir, %d files, "
          "%d dirs, %d other (symlinks), %.0f MB; two passes per job/mount"
          % (tr["files"], tr["dirs"], tr["other"], tr["bytes"] / MB))
        p("  cold (1st pass) = after %s" % DROP_HOW)
    if "build_project" in b.results:
        bp = b.results["build_project"]
        p("row 6: generated project, %d modules + main.c, %d headers, %.1f MB, "
          "%s %s, the head's page cache warm; compiler and system headers "
          "are each side's own" % (bp["modules"], bp["headers"],
                                   bp["bytes"] / MB, bp["make"], bp["cflags"]))
    if "shaped" in b.on:
        p("row 7: tbf rate %s burst 256kb latency 50ms on both veth ends; "
          "raw TCP = python sender (head) -> receiver (t1 netns), random "
          "bytes, connect to receiver's count" % a.shape_rate)
    if b.failures:
        p("")
        for k, v in b.failures.items():
            p("FAILED figure %s:\n%s" % (k, H.tail(v, 2000)))
    if "x_read_mrc_gcm_wall_MBps" in S:
        p("")
        p("experiments (what-ifs, same cold read / write; MB/s, wall and dd):")
        for k, name in [
                ("x_read_mrc_tunables", "read mrc -z auto, head malloc tunables"),
                ("x_read_mrc_zoff_tunables", "read mrc -z off, head malloc tunables"),
                ("x_read_mrc_gcm", "read mrc -o Ciphers=aes128-gcm"),
                ("x_read_mrc_zoff_tunables_gcm", "read mrc -z off + tunables + aes128-gcm"),
                ("x_read_sshcat_gcm", "read ssh -c aes128-gcm cat"),
                ("x_write_mrc_zoff_2writers", "write mrc -z off, 2 dd's of half size")]:
            if k + "_wall_MBps" in S:
                p("  %-52s %8.1f %8s" % (name, S[k + "_wall_MBps"],
                                         "%.1f" % S[k + "_dd_MBps"]
                                         if k + "_dd_MBps" in S else "-"))
    prof = b.results.get("profile")
    if prof:
        win = prof["window_s"]
        p("")
        p("profile of one cold mrc read: wall %.2fs, dd %.2fs (%.0f MB/s); "
          "CPU over a %.2fs sampling window:" % (
              prof["wall_s"], prof["dd_s"], prof["bytes"] / prof["dd_s"] / MB,
              win))
        for d in prof["procs"][:8]:
            tot = d["user_s"] + d["sys_s"]
            if tot <= 0:
                continue
            p("  %-50s usr %5.2fs sys %5.2fs = %4.0f%% of a core (%d thr)" % (
                d["proc"][:50], d["user_s"], d["sys_s"],
                100 * tot / win if win else 0, d["threads"]))
        p("  busiest threads:")
        for d in prof["threads"][:10]:
            tot = d["user_s"] + d["sys_s"]
            p("    %-28s %-16s usr %5.2fs sys %5.2fs = %4.0f%%" % (
                d["proc"][:28], d["thread"], d["user_s"], d["sys_s"],
                100 * tot / win if win else 0))
        sd = prof["system"]
        if sd:
            p("  whole machine (%d cores): %s" % (meta["cores"], ", ".join(
                "%s %.2fs" % (k[:-2], v) for k, v in sd.items() if v > 0)))
    for n in b.notes:
        p("note: " + n)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    # defaults: (full, --quick); None = not given on the command line
    D = {"size_mib": (1024, 64), "runs": (7, 1), "io_runs": (3, 1),
         "text_mib": (256, 64), "tree_runs": (3, 1), "build_runs": (3, 1),
         "build_files": (200, 40), "mem_dirs": (200, 10),
         "mem_files": (1000, 1000)}
    ap.add_argument("--quick", action="store_true",
                    help="smoke run: 64 MiB, 1 run each, 40-module build, "
                    "10k-file tree (explicit options still win)")
    ap.add_argument("--size-mib", type=int,
                    help="size of the read/write file (default 1024)")
    ap.add_argument("--runs", type=int,
                    help="runs of `true` per contender (default 7, min 1)")
    ap.add_argument("--io-runs", type=int,
                    help="runs of each read/write contender, also of the "
                    "shaped-link figure (default 3)")
    ap.add_argument("--text-mib", type=int,
                    help="also read this much compressible text (default "
                    "256; 0: skip 2b)")
    ap.add_argument("--tree-runs", type=int,
                    help="runs of the grep and find figures (default 3)")
    ap.add_argument("--build-runs", type=int,
                    help="runs of each build contender (default 3)")
    ap.add_argument("--build-files", type=int,
                    help="modules of the generated C project (default 200)")
    ap.add_argument("--build-jobs", type=int, default=2,
                    help="make -jN (default 2)")
    ap.add_argument("--shape-rate", default="1gbit",
                    help="tbf rate of the shaped link (default 1gbit)")
    ap.add_argument("--mem-dirs", type=int,
                    help="figure 8's tree: directories (default 200)")
    ap.add_argument("--mem-files", type=int,
                    help="figure 8's tree: empty files per directory "
                    "(default 1000)")
    ap.add_argument("--mem-timeout", type=int, default=900,
                    help="give figure 8's traversal this long (default 900 s)")
    ap.add_argument("--mem-retry-nofile", type=int, default=262144,
                    help="if figure 8 fails, run it again with mrc's (and so "
                    "the fresh file service's) RLIMIT_NOFILE raised to this "
                    "(default 262144; 0: don't)")
    ap.add_argument("--only", default=None,
                    help="comma-separated figures to run, of: " +
                    ",".join(FIGURES))
    for f in FIGURES:
        ap.add_argument("--skip-" + f, action="store_true")
    ap.add_argument("--profile", action="store_true",
                    help="one extra mrc read with per-thread CPU sampling")
    ap.add_argument("--experiments", action="store_true",
                    help="also what-if runs: malloc tunables, AES-GCM, "
                    "2 writers")
    ap.add_argument("--perf", action="store_true",
                    help="with --profile: also `perf record -a` it")
    ap.add_argument("--wait-load", type=float, default=0,
                    help="first wait (up to 10 min) for the 1-min load "
                    "average to drop below this")
    ap.add_argument("--keep-logs", action="store_true",
                    help="copy the harness's logs to --out")
    ap.add_argument("--out", default=None,
                    help="results dir (default $MRC_BUILD_DIR/bench-results)")
    a = ap.parse_args()
    for k, (full, quick) in D.items():
        if getattr(a, k) is None:
            setattr(a, k, quick if a.quick else full)
    if a.runs < 1 or a.io_runs < 1 or a.size_mib < 1 or a.tree_runs < 1 or \
            a.build_runs < 1 or a.build_files < 1 or a.mem_dirs < 1 or \
            a.mem_files < 1:
        ap.error("run counts and sizes must be >= 1")
    figs = set(FIGURES)
    if a.only:
        want = set(x.strip() for x in a.only.split(",") if x.strip())
        if want - figs:
            ap.error("--only: unknown figure(s) %s (of %s)" % (
                ",".join(sorted(want - figs)), ",".join(FIGURES)))
        figs = want
    figs -= set(f for f in FIGURES if getattr(a, "skip_" + f))
    if a.text_mib <= 0:
        figs.discard("text")
    a.figures = [f for f in FIGURES if f in figs]
    a.shape_text_mib = D["text_mib"][1 if a.quick else 0]
    a.out = a.out or str(Path(os.environ["MRC_BUILD_DIR"]) / "bench-results")
    probs = H.environment_problems()
    for exe in ("sshfs", "fincore", "dd", "grep", "find", "make", "cc", "tc"):
        if not shutil_which(exe):
            probs.append("missing %s" % exe)
    if probs:
        sys.exit("bench: " + "; ".join(probs))
    Path(a.out).mkdir(parents=True, exist_ok=True)
    if a.wait_load > 0:
        deadline = time.monotonic() + 600
        while float(loadavg()) >= a.wait_load and time.monotonic() < deadline:
            log("load %s >= %.1f, waiting ..." % (loadavg(), a.wait_load))
            time.sleep(20)
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(
        KeyboardInterrupt("SIGTERM")))
    meta = {"date": datetime.datetime.now().astimezone().isoformat(
        timespec="seconds"), "host": platform.node(),
        "kernel": platform.release(), "cores": os.cpu_count(),
        "load_start": loadavg(), "argv": sys.argv,
        "mrc": str(Path(os.environ["MRC_BUILD_DIR"]) / "bin" / "mrc")}
    b = Bench(a)
    t0 = time.monotonic()
    b.run()
    meta["load_end"] = loadavg()
    meta["netns"] = "mrce2e-%s-t1" % b.h.id
    meta["elapsed_s"] = time.monotonic() - t0
    meta["head_fs"] = getattr(b, "head_fs", "?")
    S = summarize(b)
    print_report(b, S, meta)
    out = Path(a.out) / "results.json"
    out.write_text(json.dumps({"meta": meta, "summary": S,
                               "runs": b.results, "notes": b.notes,
                               "args": vars(a)}, indent=1))
    print("\nraw figures: %s (bench took %.0fs)" % (out, meta["elapsed_s"]))


def shutil_which(exe):
    import shutil
    return shutil.which(exe)


if __name__ == "__main__":
    main()
