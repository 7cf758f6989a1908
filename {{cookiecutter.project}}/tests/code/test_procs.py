"""Delivery's process records: a live process is recognised by its tag, a stranger never is."""

from __future__ import annotations

import subprocess
import sys
import uuid

from {{ cookiecutter.package }}.deploy import procs

READY_THEN_SLEEP = "import time; print('ready', flush=True); time.sleep(60)"


def test_a_process_is_ours_only_while_it_runs_with_our_tag():
    """alive() needs the pid running and the instance tag on its command line; stop() ends it."""
    tag = uuid.uuid4().hex[:12]
    # Between fork and exec the child still shows pytest's command line, without the tag: under
    # load that window is long. The child says when it runs its own code, and only then is it
    # "a process with our tag" (a line on its stdout; no sleep-and-hope).
    child = subprocess.Popen(
        [sys.executable, "-c", READY_THEN_SLEEP, "--instance", tag],
        stdout=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline() == b"ready\n"
        record = {"pid": child.pid, "instance": tag}
        assert procs.alive(record)
        assert not procs.alive({"pid": child.pid, "instance": "someone-else"})  # a reused pid
        assert not procs.alive(None)
        assert procs.stop(record, grace_s=2.0)
        child.wait(timeout=10)
        assert not procs.alive(record)
        assert not procs.stop(record)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        if child.stdout is not None:
            child.stdout.close()
