"""shared.pids.alive: running, reaped and zombie processes."""

import os
import subprocess
import sys

from shared.pids import alive
from tests.support.waiting import wait_for


def test_a_running_process_is_alive_and_a_reaped_one_is_not():
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        assert alive(proc.pid) and alive(os.getpid())
    finally:
        proc.kill()
        proc.wait()
    assert not alive(proc.pid)


def test_a_zombie_counts_as_gone():
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    # exited but not reaped (no wait() yet): the kernel keeps it as a zombie
    wait_for(lambda: not alive(proc.pid), what="the child to exit")
    assert os.waitpid(proc.pid, os.WNOHANG)[0] == proc.pid  # it was still there to reap
