"""A small supervisor for the local runtime: restart a program that dies, as a container restart policy does.

    python -m artm_compose.supervise --name executor-2 --max-restarts 3 -- PROGRAM ARGS...

The program is restarted when it ends with a failure (a signal such as SIGKILL, or exit status 1;
with ``--only-killed`` a signal only), at most ``--max-restarts`` times; exit status 0 (done) and :data:`EXIT_FINAL` (the run is over:
aborted by its master, or the master is gone) end the supervisor with that status. SIGTERM and
SIGINT reach the program through its process group (the runtime signals the whole group); the
supervisor then only waits for it and does not restart it.
"""

from __future__ import annotations

import argparse
import ctypes
import signal
import subprocess
import sys
import time

from artm_compose.engine.connect import EXIT_FINAL


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m artm_compose.supervise", description=__doc__.splitlines()[0])
    parser.add_argument("--name", required=True, help="what the log lines call the program")
    parser.add_argument("--max-restarts", type=int, required=True)
    parser.add_argument("--only-killed", action="store_true",
                        help="restart only when a signal ended the program (a failure it reported stays final)")
    parser.add_argument("program", nargs=argparse.REMAINDER, help="-- PROGRAM ARGS...")
    args = parser.parse_args(argv)
    if args.program[:1] == ["--"]:
        args.program = args.program[1:]
    if not args.program:
        parser.error("no program given after --")
    if args.max_restarts < 0:
        parser.error(f"--max-restarts={args.max_restarts} must be >= 0")
    return args


def _die_with_the_supervisor() -> None:
    """In the child before exec: a SIGKILL when the supervisor dies, so that killing the supervisor
    (what the runtime records) never leaves its program running unsupervised."""
    PR_SET_PDEATHSIG = 1
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def supervise(name: str, program: list[str], max_restarts: int, only_killed: bool = False) -> int:
    """Run ``program`` until it succeeds, ends its run, or fails ``max_restarts`` + 1 times; its last status."""
    stopping = False

    def stop(_signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True  # the program got the signal too (same process group)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    restarts = 0
    while True:
        child = subprocess.Popen(program, preexec_fn=_die_with_the_supervisor)
        while True:
            try:
                code = child.wait()
                break
            except InterruptedError:  # pragma: no cover - PEP 475 retries, kept for clarity
                continue
        if stopping or code in (0, EXIT_FINAL) or (only_killed and code > 0):
            return code if code >= 0 else 128 - code
        if restarts >= max_restarts:
            print(f"supervisor: {name} failed (exit status {code}); no restart left of {max_restarts}", flush=True)
            return code if code >= 0 else 128 - code
        restarts += 1
        print(f"supervisor: {name} failed (exit status {code}); restarting it ({restarts} of {max_restarts})",
              flush=True)
        time.sleep(0.2)  # a program failing at once must not spin


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    sys.exit(supervise(args.name, args.program, args.max_restarts, args.only_killed))


if __name__ == "__main__":
    main()
