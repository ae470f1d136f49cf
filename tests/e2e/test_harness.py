"""Self-test of the e2e harness, with plain OpenSSH only (no mrc needed)."""

import os
import re
import signal
import subprocess
import sys
import time

import pytest

import harness as H

pytestmark = pytest.mark.targets(2)


def test_login_works_on_every_target(harness):
    for t in harness.targets:
        cp = harness.ssh(t, "id -un; echo $HOME")
        assert cp.returncode == 0, harness.describe(cp)
        assert cp.stdout.split() == ["root", "/root"], harness.describe(cp)


def test_sshd_pid_is_the_popen_pid(harness):
    for t in harness.targets:
        c = H.cmdline(t.pid)
        assert "sshd" in c and str(t.config) in c, c
        assert os.readlink("/proc/%d/ns/net" % t.pid) != \
            os.readlink("/proc/self/ns/net")
        assert os.readlink("/proc/%d/ns/mnt" % t.pid) != \
            os.readlink("/proc/self/ns/mnt")


def test_head_data_is_hidden_on_the_target(harness, workdir):
    (workdir / "head-only.txt").write_text("head data\n")
    assert str(workdir).startswith(str(harness.tmp_dir) + "/")
    cp = harness.ssh("t1", "ls -A /tmp; echo ---; ls -A /root; echo ---; "
                     "test -e %s && echo VISIBLE || echo hidden" %
                     harness.tmp_dir)
    assert cp.returncode == 0, harness.describe(cp)
    tmp, root, vis = [x.split() for x in cp.stdout.split("---")]
    assert tmp == [], "target /tmp not empty: %r" % tmp
    assert root == [], "target /root not empty: %r" % root
    assert vis == ["hidden"]
    # the target's /tmp is its own: a file made there is not on the head
    cp = harness.ssh("t1", "echo target > /tmp/target-only; cat /tmp/target-only")
    assert cp.stdout == "target\n", harness.describe(cp)
    assert not os.path.exists("/tmp/target-only")
    assert harness.target_sh("t1", "cat /tmp/target-only").stdout == "target\n"
    # and each target has its own
    assert harness.target_sh("t2", "ls -A /tmp").stdout == ""


def test_target_has_its_own_network(harness):
    t1, t2 = harness.targets
    cp = harness.ssh(t1, "ip -o addr")
    assert cp.returncode == 0, harness.describe(cp)
    assert re.search(r"\binet %s/24\b" % re.escape(t1.ip), cp.stdout), \
        cp.stdout
    assert t1.head_ip + "/" not in cp.stdout
    assert t2.ip not in cp.stdout
    # the same seen through target_sh (nsenter into sshd's namespaces)
    cp = harness.target_sh(t1, "ip -o -4 addr")
    assert "inet %s/24" % t1.ip in cp.stdout, cp.stdout + cp.stderr
    assert "mrc-e2e-home /root tmpfs" in harness.target_sh(t1, "cat /proc/mounts").stdout


def test_sftp_upload_lands_in_the_targets_home(harness, workdir):
    """mrc deploys mrc-target by SFTP into ~/.cache/mrc; check sshd's
    internal-sftp writes into the target's own /root."""
    (workdir / "payload").write_bytes(b"\x7fELF-not-really\n")
    cp = subprocess.run(
        ["sftp", "-F", str(harness.ssh_config), "-b", "-", "t1"],
        input="mkdir .cache\nput %s .cache/payload\n" % (workdir / "payload"),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        timeout=30)
    assert cp.returncode == 0, cp.stdout
    cp = harness.target_sh("t1", "cat /root/.cache/payload")
    assert cp.stdout == "\x7fELF-not-really\n", cp.stderr


def test_unknown_host_key_config(harness):
    cfg, kh = harness.make_ssh_config("nokey")
    assert kh.read_text() == ""
    cp = harness.ssh("t1", "true", config=cfg)
    assert cp.returncode == 255, harness.describe(cp)
    assert "Host key verification failed" in cp.stderr, cp.stderr
    cp = harness.ssh("t1", "true", config=cfg,
                     opts=["-o", "StrictHostKeyChecking=accept-new"])
    assert cp.returncode == 0, harness.describe(cp)
    assert harness.t1.ip in kh.read_text()
    assert harness.t1.host_pub.split()[1] in kh.read_text()


def test_dead_and_closed_hosts(harness):
    t0 = time.monotonic()
    cp = harness.ssh("t1-dead", "true", timeout=30)
    took = time.monotonic() - t0
    assert cp.returncode == 255, harness.describe(cp)
    assert took < H.CONNECT_TIMEOUT + 3, took
    assert re.search(r"connect", cp.stderr, re.I), cp.stderr
    cp = harness.ssh("t1-closed", "true", timeout=30)
    assert cp.returncode == 255, harness.describe(cp)
    assert "refused" in cp.stderr, cp.stderr
    assert cp.elapsed < 3


def test_target_procs_and_mounts_see_only_that_target(harness):
    p = subprocess.Popen(
        ["ssh", "-F", str(harness.ssh_config), "-o", "BatchMode=yes", "t1",
         "sleep 77.5"], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL)
    try:
        found = H.wait_for(lambda: harness.target_procs("t1", r"^sleep 77\.5$"),
                           10)
        assert found, "sleep not seen on t1"
        assert harness.target_procs("t2", r"^sleep 77\.5$") == []
        # a mount in a private namespace of a target process is visible to
        # target_mounts (that's how kill -9 tests look for fuse.mrc)
        q = subprocess.Popen(
            ["nsenter", "-t", str(harness.t1.pid), "-m", "-n", "--",
             "unshare", "--mount", "--propagation", "private", "sh", "-c",
             "mkdir -p /tmp/mnt && mount -t tmpfs probe-fs /tmp/mnt && "
             "exec sleep 78.5"])
        try:
            assert H.wait_for(
                lambda: harness.target_mounts("t1", "tmpfs") and any(
                    "probe-fs" in line
                    for _, line in harness.target_mounts("t1", "tmpfs")), 10)
            assert not any("probe-fs" in line for _, line in
                           harness.target_mounts("t2", "tmpfs"))
            # and it is not in sshd's namespace
            assert "probe-fs" not in harness.target_sh(
                "t1", "cat /proc/mounts").stdout
        finally:
            q.kill()
            q.wait()
    finally:
        p.kill()
        p.wait()


def test_teardown_leaves_nothing(make_harness):
    h = make_harness(2)
    hid = h.id
    names = [t.ns for t in h.targets]
    cp = h.ssh("t2", "true")
    assert cp.returncode == 0, h.describe(cp)
    # leave a stray process and a mount behind in a target
    subprocess.run(["nsenter", "-t", str(h.t1.pid), "-m", "-n", "--", "sh",
                    "-c", "mkdir -p /tmp/m && mount -t tmpfs x /tmp/m && "
                    "setsid sleep 999.5 </dev/null >/dev/null 2>&1 &"],
                   check=True)
    assert H.wait_for(lambda: h.target_procs("t1", r"^sleep 999\.5$"), 5)
    assert H.leftovers(hid) != []
    h.close()
    print("setup %.2fs teardown %.2fs" % (h.setup_seconds,
                                          h.teardown_seconds))
    assert H.leftovers(hid) == []
    for ns in names:
        assert not os.path.exists("/run/netns/" + ns)
    for pid in H._pids():
        c = H.cmdline(pid)
        assert not (c and c == "sleep 999.5" and H._alive(pid)), pid
    assert h.teardown_seconds < 10


def test_owner_killed_is_reaped():
    """A harness whose owner got kill -9 is torn down by the next one."""
    H.reap_stale()
    here = os.path.dirname(os.path.abspath(__file__))
    prog = ("import sys, time; sys.path.insert(0, %r); import harness; "
            "h = harness.Harness(1, label='victim'); h.start(); "
            "print(h.id, flush=True); time.sleep(120)" % here)
    p = subprocess.Popen([sys.executable, "-c", prog],
                         stdout=subprocess.PIPE, text=True)
    try:
        hid = p.stdout.readline().strip()
        assert H._ID_RE.match(hid), hid
        assert H.leftovers(hid) != []
    finally:
        p.send_signal(signal.SIGKILL)
        p.wait()
    assert H.leftovers(hid) != []      # its sshd is still up
    H.reap_stale()
    assert H.leftovers(hid) == []
