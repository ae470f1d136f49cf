"""Issue 4: mosmon as a user sees it. 8 real mosixd in 8 network
namespaces; mosmon runs in a real terminal (tmux) against one of them; the
captured screen shows the 8 nodes and their bars, and its keys switch the
view (memory bars, help) and quit.
"""

import re
import subprocess


import mosix_cluster as M

STEP_MS = 500


def _tmux(*args, check=True):
    p = subprocess.run(["tmux", *args], capture_output=True, text=True)
    if check and p.returncode != 0:
        raise AssertionError("tmux %s: %s" % (" ".join(args), p.stderr.strip()))
    return p.stdout


def _screen(session):
    return _tmux("capture-pane", "-p", "-t", session)


def _node_lines(screen):
    """{id: line} for lines that start (after blanks) with a node id."""
    out = {}
    for line in screen.splitlines():
        m = re.match(r"\s*(\d+)\*?\s", line)
        if m:
            out[int(m.group(1))] = line
    return out


def test_mosmon_in_a_terminal_shows_every_node_and_its_bar():
    M.require("mosixd", "mosmon", tools=("tmux",))
    with M.MosixCluster(step_ms=STEP_MS, window=4) as c:
        nodes = c.one_cluster(range(1, 9))
        assert M.wait_for(lambda: all(n.ids() == list(range(1, 9)) for n in nodes), 30)
        session = "mosmon-e2e-" + c.id
        cmd = "%s --socket %s --interval 0.5" % (c.bin("mosmon"), nodes[0].socket)
        _tmux("new-session", "-d", "-s", session, "-x", "120", "-y", "40", cmd)
        try:
            # The load view: one line per node, each with a bar.
            def eight():
                lines = _node_lines(_screen(session))
                return lines if sorted(lines) == list(range(1, 9)) else None
            lines = M.wait_for(eight, 10)
            screen = _screen(session)
            assert lines, "mosmon does not show 8 nodes:\n" + screen
            assert "*" in lines[1], "node 1 (the answering daemon) is not marked:\n" + screen
            # Each node has a bar (empty at load 0) and its value after it.
            for i, line in lines.items():
                assert re.search(r"\[[# ]{10,}\]\s+\d+\.\d\d\s*$", line), "node %d has no bar:\n%s" % (i, screen)
            # Memory view: used as '#', free as '-', on every node.
            _tmux("send-keys", "-t", session, "m")
            def memory_bars():
                ls = _node_lines(_screen(session))
                return ls if len(ls) == 8 and all("#" in l and "-" in l for l in ls.values()) else None
            assert M.wait_for(memory_bars, 5), "no memory bars after 'm':\n" + _screen(session)
            # Help toggles on and off; q quits.
            _tmux("send-keys", "-t", session, "h")
            assert M.wait_for(lambda: "help" in _screen(session).lower() and
                              len(_node_lines(_screen(session))) < 8, 5), \
                "no help panel after 'h':\n" + _screen(session)
            _tmux("send-keys", "-t", session, "h")
            assert M.wait_for(lambda: len(_node_lines(_screen(session))) == 8, 5)
            _tmux("send-keys", "-t", session, "q")
            assert M.wait_for(lambda: subprocess.run(["tmux", "has-session", "-t", session],
                                                     capture_output=True).returncode != 0, 5), \
                "mosmon did not quit on 'q'"
        finally:
            _tmux("kill-session", "-t", session, check=False)
