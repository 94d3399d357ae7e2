"""Loaded by every Python process of a benchmarked run (benchmarks/common.py
puts this folder on PYTHONPATH, with FAF_PROBE_DIR set), and only there.

Counts what a run costs whatever the server: MongoDB commands (each a round
trip, from PyMongo's command monitoring), SMTP commands (each line the client
writes: EHLO, MAIL, RCPT, DATA, the message, QUIT...), and the process's own
CPU time. At exit (also a worker forked from multiprocessing's fork server,
which skips atexit) each process writes `<pid>.json` into FAF_PROBE_DIR; the
benchmark adds them up for the whole process tree.
"""

from __future__ import annotations

import atexit
import json
import os
import resource
import sys
from collections import Counter
from pathlib import Path
from typing import Any

_DIR = os.environ.get("FAF_PROBE_DIR")
if any("resource_tracker" in arg for arg in sys.orig_argv):
    # multiprocessing's resource tracker makes no MongoDB or SMTP command and
    # never imports PyMongo: counting in it would add 10 MB to the tree.
    _DIR = None

if _DIR:
    import smtplib
    from multiprocessing.util import Finalize, register_after_fork

    from pymongo import monitoring

    commands: Counter[str] = Counter()
    smtp = Counter[str]()

    class _Commands(monitoring.CommandListener):
        def started(self, event: monitoring.CommandStartedEvent) -> None:
            # "update invitations": the command and the collection it names
            target = event.command.get(event.command_name)
            name = event.command_name
            commands[f"{name} {target}" if isinstance(target, str) else name] += 1

        def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
            return None

        def failed(self, event: monitoring.CommandFailedEvent) -> None:
            return None

    monitoring.register(_Commands())
    _send = smtplib.SMTP.send

    def _counting_send(self: smtplib.SMTP, data: str | bytes) -> None:
        smtp["writes"] += 1
        raw = data.encode() if isinstance(data, str) else data
        # A message (ending with CRLF . CRLF) is one command; commands are
        # lines, also those sent after a message in the same write.
        _, end, after = raw.rpartition(b"\r\n.\r\n")
        smtp["commands"] += (1 if end else 0) + after.count(b"\r\n")
        _send(self, data)

    smtplib.SMTP.send = _counting_send  # type: ignore[method-assign]

    def _write() -> None:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        report = {
            "commands": dict(commands),
            "smtp_commands": smtp["commands"],
            "smtp_writes": smtp["writes"],
            "user": usage.ru_utime,
            "system": usage.ru_stime,
        }
        Path(_DIR, f"{os.getpid()}.json").write_text(json.dumps(report))

    _PROFILE = os.environ.get("FAF_PROFILE_DIR")
    if _PROFILE:
        import cProfile
        import time

        # CPU time, not wall: what the run costs, not what it waits on.
        _profiler = cProfile.Profile(time.process_time)
        _profiler.enable()

    _SAMPLE = os.environ.get("FAF_SAMPLE_DIR")
    if _SAMPLE:
        import signal

        # A sampling profile by CPU time: SIGPROF every millisecond of the
        # process's CPU (all its threads; the kernel delivers it at its tick,
        # about 4 ms here), the main thread's stack counted. cProfile times
        # every call and inflates a run about fourfold, most where calls are
        # many and small; this costs a stack walk a sample. Time spent in C
        # or in the kernel lands on the next line of Python that runs.
        stacks: Counter[str] = Counter()

        def _sample(signum: int, frame: Any) -> None:
            names = []
            while frame is not None:
                code = frame.f_code
                names.append(f"{os.path.basename(code.co_filename)}:{code.co_name}")
                frame = frame.f_back
            stacks[";".join(reversed(names))] += 1

        def _start_sampling() -> None:
            stacks.clear()
            signal.signal(signal.SIGPROF, _sample)
            signal.setitimer(signal.ITIMER_PROF, 0.001, 0.001)

        _start_sampling()

    def _write_all() -> None:
        _write()
        if _PROFILE:
            _profiler.disable()
            _profiler.dump_stats(str(Path(_PROFILE, f"{os.getpid()}.prof")))
        if _SAMPLE:
            signal.setitimer(signal.ITIMER_PROF, 0, 0)
            lines = [f"{stack} {count}\n" for stack, count in stacks.items()]
            Path(_SAMPLE, f"{os.getpid()}.folded").write_text("".join(lines))

    atexit.register(_write_all)

    def _in_forked_worker(_: object) -> None:
        # A worker forked from multiprocessing's fork server ends with
        # os._exit(), which skips atexit, after running multiprocessing's
        # finalizers (which the fork server's own registry does not carry).
        commands.clear()
        smtp.clear()
        if _PROFILE:
            _profiler.clear()
            _profiler.enable()
        if _SAMPLE:
            _start_sampling()  # a fork inherits no interval timer
        Finalize(None, _write_all, exitpriority=0)

    register_after_fork(commands, _in_forked_worker)
