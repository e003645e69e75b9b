"""Processes started by the local runtime: start with a log, record, recognise, stop.

A PID alone can be reused by an unrelated process after ours exits, so each record also holds the
process start time (``/proc/<pid>/stat`` field 22) and the boot id: ``down`` signals a PID only when
both still match. Linux only (``/proc``), like the local runtime itself.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path

from artm_compose.errors import ConfigError
from artm_compose.state import write_text_atomic
from artm_compose.waiting import poll_until

_BOOT_ID = Path("/proc/sys/kernel/random/boot_id")


@dataclass(frozen=True)
class ProcessRecord:
    """Who we started: enough to recognise the same process later."""

    component: str
    pid: int
    start_ticks: int
    boot_id: str
    argv: tuple[str, ...]
    log: str

    def save(self, path: Path) -> None:
        write_text_atomic(path, json.dumps({**asdict(self), "argv": list(self.argv)}, indent=2) + "\n")

    @classmethod
    def load(cls, path: Path) -> ProcessRecord:
        values = json.loads(path.read_text())
        return cls(**{**values, "argv": tuple(values["argv"])})


def start_process(component: str, argv: list[str], *, log: Path, cwd: Path,
                  env: dict[str, str] | None = None) -> tuple[subprocess.Popen, ProcessRecord]:
    """Start ``argv`` in its own session with stdout and stderr appended to ``log``."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        child = subprocess.Popen(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=out,
                                 stderr=subprocess.STDOUT, start_new_session=True)
    ticks = _start_ticks(child.pid)
    record = ProcessRecord(component=component, pid=child.pid, start_ticks=ticks if ticks is not None else -1,
                           boot_id=_boot_id(), argv=tuple(argv), log=str(log))
    return child, record


def is_running(record: ProcessRecord) -> bool:
    """True when the process of ``record`` is still alive and is the one we started."""
    _reap(record.pid)
    return record.boot_id == _boot_id() and _start_ticks(record.pid) == record.start_ticks


def stop_process(record: ProcessRecord, timeout: float = 10.0) -> str:
    """Stop the process of ``record``: SIGTERM, then SIGKILL after ``timeout``; says what happened."""
    return stop_processes([record], timeout)[0]


def stop_processes(records: list[ProcessRecord], timeout: float = 10.0) -> list[str]:
    """Stop all of ``records`` at once (SIGTERM to all, wait, SIGKILL survivors); one message per record.

    A record whose PID is gone or now belongs to another process is left alone.
    """
    signalled = [r for r in records if is_running(r)]
    for record in signalled:
        _signal_group(record, signal.SIGTERM)
    stubborn = _wait_exit(signalled, timeout)
    for record in stubborn:
        _signal_group(record, signal.SIGKILL)
    survivors = _wait_exit(stubborn, 5.0)

    def outcome(record: ProcessRecord) -> str:
        what = f"{record.component} (pid {record.pid})"
        if record in survivors:
            return f"{what} survived SIGKILL"
        if record in stubborn:
            return f"killed {what} after {timeout:g} s without exiting"
        if record in signalled:
            return f"stopped {what}"
        return f"{what} was not running"

    return [outcome(r) for r in records]


def _wait_exit(records: list[ProcessRecord], timeout: float) -> list[ProcessRecord]:
    """Wait up to ``timeout`` for ``records`` to exit (reaping our children); return those still running."""
    pending = list(records)

    def all_exited() -> bool:
        nonlocal pending
        pending = [r for r in pending if is_running(r)]
        return not pending

    poll_until(all_exited, timeout, interval=0.02)
    for record in records:
        if record not in pending:
            _reap(record.pid)  # it may have turned zombie after is_running's own reap
    return pending


def port_free(port: int, host: str = "127.0.0.1") -> bool:
    """True if a listener could bind ``host:port`` now (as redis-server does, with SO_REUSEADDR)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def check_dashboard_port(port: int) -> None:
    """ConfigError naming the holder unless ``up --dashboard`` can listen on 127.0.0.1:``port`` here."""
    if port_free(port):
        return
    owner = port_owner(port)
    holder = f" by pid {owner[0]} ({owner[1]})" if owner else " by another process"
    raise ConfigError(f"dashboard_port {port} on 127.0.0.1 is already in use{holder}; "
                      f"choose another --dashboard-port or stop that process")


def port_owner(port: int) -> tuple[int, str] | None:
    """Best effort: ``(pid, command name)`` of the process listening on TCP ``port``, from /proc."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state == "0A" and int(local.rsplit(":", 1)[1], 16) == port:
                inodes.add(f"socket:[{inode}]")
    if not inodes:
        return None
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            for fd in (proc / "fd").iterdir():
                if os.readlink(fd) in inodes:
                    return int(proc.name), (proc / "comm").read_text().strip()
        except OSError:
            continue
    return None


def _start_ticks(pid: int) -> int | None:
    """Start time of ``pid`` in clock ticks since boot, or None if it is gone or a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: split after its last ')'.
    fields = stat[stat.rindex(")") + 2:].split()
    if fields[0] in ("Z", "X") and _live_threads(pid) <= 1:
        return None  # a zombie leader with live threads is still exiting: count it as running
    return int(fields[19])


def _live_threads(pid: int) -> int:
    try:
        return len(os.listdir(f"/proc/{pid}/task"))
    except OSError:
        return 0


def _boot_id() -> str:
    try:
        return _BOOT_ID.read_text().strip()
    except OSError:
        return ""


def _reap(pid: int) -> None:
    """Collect ``pid`` if it is our exited child, so that it does not linger as a zombie."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def _signal_group(record: ProcessRecord, signum: int) -> None:
    # Each component was started as a session leader: its group holds it and anything it spawned.
    try:
        os.killpg(record.pid, signum)
    except ProcessLookupError:
        pass
    except PermissionError:
        os.kill(record.pid, signum)
