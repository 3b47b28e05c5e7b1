"""Events cannot deadlock: listeners may add and remove listeners (themselves included) from
inside their calls, on a worker thread or the pool's maintenance thread; threads may add and
remove listeners while events fire; and a fork() in the middle of all that leaves a child that
works. Each scenario runs in a child process under a time limit (event_scenarios.py): a
deadlock can hold the GIL, and then nothing in the hung process could report it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

SCENARIOS = Path(__file__).with_name("event_scenarios.py")


def run_scenario(server, *args: str, timeout: float) -> None:
    try:
        done = subprocess.run([sys.executable, str(SCENARIOS), args[0], server.url, *args[1:]],
                              capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as hung:
        output = [o.decode(errors="replace") if isinstance(o, bytes) else o or ""
                  for o in (hung.stdout, hung.stderr)]
        pytest.fail(f"{' '.join(args)}: hung for {timeout} s (a deadlock)\n{''.join(output)}")
    assert done.returncode == 0 and done.stdout.strip().endswith("ok"), (
        f"{' '.join(args)}: exit status {done.returncode}\n{done.stdout}{done.stderr}")


@pytest.mark.parametrize("source", ["worker", "maintenance"])
@pytest.mark.parametrize("change", ["remove_self", "add_other", "remove_other"])
def test_listener_changes_listeners_from_inside_its_call(server, source, change):
    run_scenario(server, "in_callback", source, change, timeout=60)


def test_threads_add_and_remove_listeners_while_events_fire(server):
    run_scenario(server, "churn", "3", timeout=60)


@pytest.mark.timeout(300)
def test_fork_while_threads_churn_events_and_listeners(server):
    # 50 forks; each child must finish its commands within 5 s (the scenario kills it then).
    run_scenario(server, "fork", "50", timeout=280)
