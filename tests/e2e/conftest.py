"""pytest fixtures for mrc's end-to-end tests (see README.md in this dir).

Fixtures:
  harness       module-scoped Harness (targets t1..tN; N=1 unless the module
                sets ``pytestmark = pytest.mark.targets(N)``)
  workdir       function-scoped fresh head data dir under
                /tmp/mrc-e2e-<id>/head/, made the default cwd of run_mrc
  make_harness  factory: make_harness(n=1) -> another started Harness,
                closed after the test (for tests about the harness itself)

If the machine cannot host the tests (not root, no /dev/fuse, no sshd, ...)
the tests skip, except with CI=true, where they fail: e2e may not skip in CI.
"""

import os
import signal
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as H  # noqa: E402


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "targets(n): number of targets the module's harness makes")
    config.addinivalue_line(
        "markers", "needs_mrc: the test runs the mrc binaries (fails until "
        "they work)")
    # ctest/CI stop runs with SIGTERM: turn it into KeyboardInterrupt so the
    # finalizers tear the hosts down (a kill -9 is reaped by the next run).
    if signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
        def _term(signum, frame):
            raise KeyboardInterrupt("SIGTERM")
        signal.signal(signal.SIGTERM, _term)


def _in_ci():
    return os.environ.get("CI", "").lower() == "true"


def require_e2e_environment():
    probs = H.environment_problems()
    if probs:
        msg = "e2e hosts unavailable: " + "; ".join(probs)
        if _in_ci():
            pytest.fail(msg + " (CI=true: e2e tests may not skip)",
                        pytrace=False)
        pytest.skip(msg)


def _start(n, label):
    require_e2e_environment()
    h = H.Harness(n, label=label)
    try:
        h.start()
    except H.HarnessError as e:
        pytest.fail("harness setup failed: %s" % e, pytrace=False)
    return h


@pytest.fixture(scope="module")
def harness(request):
    m = request.node.get_closest_marker("targets")
    n = m.args[0] if m and m.args else 1
    h = _start(n, request.module.__name__)
    request.addfinalizer(h.close)
    return h


@pytest.fixture
def workdir(request, harness):
    d = harness.new_workdir(request.node.name)
    harness.default_cwd = d
    yield d
    harness.default_cwd = None


class _Factory:
    def __init__(self, label):
        self.label = label
        self.made = []

    def __call__(self, n=1):
        h = _start(n, self.label)
        self.made.append(h)
        return h

    def close(self):
        for h in self.made:
            h.close()


@pytest.fixture
def make_harness(request):
    f = _Factory(request.node.name)
    request.addfinalizer(f.close)
    return f


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if not rep.failed:
        return
    for v in getattr(item, "funcargs", {}).values():
        if isinstance(v, H.Harness):
            v.failed = True
        elif isinstance(v, _Factory):
            for h in v.made:
                h.failed = True
