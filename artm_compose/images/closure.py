"""Which requirements a wheelhouse lacks for another interpreter than the one that filled it.

``pip download --python-version`` picks wheels for the target but evaluates environment markers for
the running interpreter: the host's Python 3.11.7 skips ``async-timeout; python_full_version <
"3.11.3"``, which the base image's 3.11.2 needs. So the wheelhouse is checked against the target's
own marker environment (read from the base image) and topped up until nothing is missing.
"""

from __future__ import annotations

import email.parser
import zipfile
from dataclasses import dataclass
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name, parse_wheel_filename
from packaging.version import Version


@dataclass(frozen=True)
class Distribution:
    """A wheel in the wheelhouse: its version and its ``Requires-Dist`` lines."""

    version: Version
    requires: tuple[str, ...]


def missing_requirements(top: list[str], available: dict[str, list[Distribution]],
                         environment: dict[str, str]) -> list[str]:
    """Requirements (top level and transitive, markers evaluated in ``environment``) no wheel satisfies.

    ``available`` maps canonical project names to the wheels present. Each missing requirement is
    returned once, without its marker, ready for ``pip download``.
    """
    pending = [(Requirement(line), "") for line in top]
    visited: set[tuple[str, str]] = set()
    missing: set[str] = set()
    while pending:
        requirement, extra = pending.pop()
        if requirement.marker is not None and not requirement.marker.evaluate({**environment, "extra": extra}):
            continue
        name = canonicalize_name(requirement.name)
        matching = [d for d in available.get(name, []) if requirement.specifier.contains(d.version, prereleases=True)]
        if not matching:
            extras = f"[{','.join(sorted(requirement.extras))}]" if requirement.extras else ""
            missing.add(f"{name}{extras}{requirement.specifier}")
            continue
        chosen = max(matching, key=lambda d: d.version)
        for wanted_extra in ("", *sorted(requirement.extras)):
            if (name, wanted_extra) in visited:
                continue
            visited.add((name, wanted_extra))
            pending += [(Requirement(line), wanted_extra) for line in chosen.requires]
    return sorted(missing)


def read_wheelhouse(directory: Path) -> dict[str, list[Distribution]]:
    """The wheels in ``directory`` by canonical project name, with their declared requirements."""
    available: dict[str, list[Distribution]] = {}
    for wheel in sorted(directory.glob("*.whl")):
        name, version, _, _ = parse_wheel_filename(wheel.name)
        available.setdefault(canonicalize_name(name), []).append(Distribution(version, _requires(wheel)))
    return available


def _requires(wheel: Path) -> tuple[str, ...]:
    with zipfile.ZipFile(wheel) as archive:
        metadata = next(n for n in archive.namelist() if n.count("/") == 1 and n.endswith(".dist-info/METADATA"))
        headers = email.parser.BytesHeaderParser().parsebytes(archive.read(metadata))
    return tuple(headers.get_all("Requires-Dist") or ())
