"""Which of the given files this container cannot read: run on a Swarm node to check its data.

``python3 -m artm_compose.runtimes.swarm.check_files PATH...`` prints one JSON document,
``{"host": ..., "checked": N, "problems": ["<path> is missing", ...]}``, and exits 0 either way.
"""

from __future__ import annotations

import json
import socket
import sys
from pathlib import Path


def problems(paths: list[Path]) -> list[str]:
    """``<path> is missing`` / ``<path> is not readable`` for each path that cannot be read."""
    found = []
    for path in paths:
        try:
            if not path.is_file():
                found.append(f"{path} is missing")
                continue
            with path.open("rb") as handle:
                handle.read(1)
        except OSError as error:
            found.append(f"{path} is not readable ({error.strerror or error})")
    return found


def main(argv: list[str] | None = None) -> int:
    paths = [Path(p) for p in (sys.argv[1:] if argv is None else argv)]
    print(json.dumps({"host": socket.gethostname(), "checked": len(paths), "problems": problems(paths)}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
