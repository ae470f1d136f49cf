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
import re
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

    # ------------------------------------------------------------ env

    def mrc_env(self):
        e = dict(os.environ)
        e.pop("SSH_AUTH_SOCK", None)
        e["HOME"] = str(self.h.home)
        return e

    def mrc(self, *args, cwd=None, timeout=600):
        argv = self.h.mrc_argv(*args)
        return timed(argv, cwd=str(cwd or self.data), env=self.mrc_env(),
                     timeout=timeout)

    def ssh(self, cmd, timeout=600, opts=()):
        argv = ["ssh", "-F", str(self.h.ssh_config), "-o", "BatchMode=yes"] \
            + list(opts) + ["t1", cmd]
        return timed(argv, env=self.mrc_env(), timeout=timeout)

    def tsh(self, cmd, timeout=600):
        """sh -c cmd inside t1's mount+net namespaces, timed."""
        argv = ["nsenter", "-t", str(self.h.t1.pid), "-m", "-n", "--",
                "sh", "-c", cmd]
        return timed(argv, timeout=timeout)

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
        t = self.h.t1
        log("harness %s: t1 %s (head end %s), setup %.2fs" % (
            self.h.id, t.ip, t.head_ip, self.h.setup_seconds))
        # the harness's target /tmp is a 1 GiB tmpfs: room for the file(s)
        tmp_mib = a.size_mib + max(a.text_mib, 0) + 256
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
        if a.text_mib > 0:
            self.make_text()

    def make_text(self):
        """--text-mib of C headers (compressible text), head and target."""
        self.text = self.data / "text.txt"
        want = self.args.text_mib * 1024 * 1024
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
            self.mount_rev()
            try:
                rc, w3, err, _ = self.tsh(
                    "dd if=/dev/zero of=/tmp/sshfs-mnt/out.bin bs=1M "
                    "count=%d conv=fsync" % cnt)
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
                "  sshfs-rev dd %.2fs  local dd %.2fs" % (
                    i + 1, w, s, w2, s2, s3, s4))

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
            if not self.args.skip_true:
                self.bench_true()
            else:
                rc, w, err, _ = self.mrc("t1", "true", timeout=120)
                check(rc, "warm-up mrc t1 true", err)
            if not self.args.skip_read:
                self.bench_read()
            if self.args.text_mib > 0:
                self.bench_text()
            if not self.args.skip_write:
                self.bench_write()
            if self.args.experiments:
                self.bench_experiments()
            if self.args.profile or self.args.perf:
                self.bench_profile()
        finally:
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
        S["write_local_MBps"] = rate("write_local", "dd_s")
        S["write_ratio_sshfs"] = S["write_mrc_wall_MBps"] / S["write_sshfs_rev_MBps"]
        S["write_ratio_sshfs_zoff"] = S["write_mrc_zoff_wall_MBps"] / S["write_sshfs_rev_MBps"]
    X = [("x_read_mrc_zoff_tunables", "s"), ("x_read_mrc_tunables", "s"),
         ("x_read_mrc_gcm", "s"), ("x_read_mrc_zoff_tunables_gcm", "s"),
         ("x_read_sshcat_gcm", "s"), ("x_write_mrc_zoff_2writers", "s")]
    for k, f in X:
        if k in r:
            S[k + "_wall_MBps"] = rate(k)
            if "dd_s" in r[k][0]:
                S[k + "_dd_MBps"] = rate(k, "dd_s")
    return S


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
    p("%-52s %12s %12s %8s %8s" % ("figure", "mrc", "peer", "ratio", "target"))

    def row(name, mine, peer, ratio, target, fmt="%.1f"):
        f = lambda v: (fmt % v) if isinstance(v, float) and v == v else "-"
        p("%-52s %12s %12s %8s %8s" % (name, f(mine), f(peer),
                                       ("%.2fx" % ratio) if ratio == ratio
                                       else "-", target))
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
        row("3. write %d MiB fsync, MB/s: mrc wall vs sshfs-rev" % a.size_mib,
            S["write_mrc_wall_MBps"], S["write_sshfs_rev_MBps"],
            S["write_ratio_sshfs"], ">=1.5x")
        row("   mrc dd-reported vs sshfs-rev dd",
            S["write_mrc_dd_MBps"], S["write_sshfs_rev_MBps"],
            S["write_mrc_dd_MBps"] / S["write_sshfs_rev_MBps"], "-")
        row("   mrc -z off wall vs sshfs-rev",
            S["write_mrc_zoff_wall_MBps"], S["write_sshfs_rev_MBps"],
            S["write_ratio_sshfs_zoff"], ">=1.5x")
        row("   head disk, local write+fsync (ceiling)",
            S["write_local_MBps"], float("nan"), float("nan"), "-")
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
    ap.add_argument("--size-mib", type=int, default=1024,
                    help="size of the read/write file (default 1024)")
    ap.add_argument("--runs", type=int, default=7,
                    help="runs of `true` per contender (default 7, min 1)")
    ap.add_argument("--io-runs", type=int, default=3,
                    help="runs of each read/write contender (default 3)")
    ap.add_argument("--text-mib", type=int, default=256,
                    help="also read this much compressible text (0: skip)")
    ap.add_argument("--skip-true", action="store_true")
    ap.add_argument("--skip-read", action="store_true")
    ap.add_argument("--skip-write", action="store_true")
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
    if a.runs < 1 or a.io_runs < 1 or a.size_mib < 1:
        ap.error("--runs, --io-runs and --size-mib must be >= 1")
    a.out = a.out or str(Path(os.environ["MRC_BUILD_DIR"]) / "bench-results")
    probs = H.environment_problems()
    for exe in ("sshfs", "fincore", "dd"):
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
