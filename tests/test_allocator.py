import os
import subprocess
import sys

import pytest

from vae.allocator import TUNABLE, huge_pages_would_help

# A script that restarts itself: it prints its PID and tunables before and after.
SCRIPT = """
import os
from vae.allocator import restart_with_huge_pages
print(os.getpid(), os.environ.get("GLIBC_TUNABLES"), flush=True)
restart_with_huge_pages()
print("ran on", flush=True)
"""


def _run(env):
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        capture_output=True,
        text=True,
        env=env,
        check=True,
        timeout=60,
    )
    return result.stdout.splitlines()


@pytest.mark.skipif(
    not huge_pages_would_help(),
    reason="needs Linux glibc with transparent huge pages on request (madvise)",
)
def test_a_script_restarts_once_in_place_with_the_tunable_and_keeps_the_others():
    env = {**os.environ, "GLIBC_TUNABLES": "glibc.malloc.arena_max=4"}
    first, second, last = _run(env)
    pid, tunables = first.split(" ", 1)
    assert tunables == "glibc.malloc.arena_max=4"
    assert second == f"{pid} glibc.malloc.arena_max=4:{TUNABLE}"  # the same process, restarted
    assert last == "ran on"


def test_a_script_already_started_with_the_tunable_goes_on():
    env = {**os.environ, "GLIBC_TUNABLES": TUNABLE}
    lines = _run(env)
    assert lines[1:] == ["ran on"]
    assert lines[0].endswith(f" {TUNABLE}")
