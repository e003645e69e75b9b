"""The Debian mirrors this host's apt uses, so the base image is built from the same ones.

A machine that reaches only its configured mirror (a proxy, a snapshot, a local mirror) must be able
to build the base image: debootstrap gets the host's mirror for the suite, and the image's
``sources.list`` lists the host's entries for the suite, its ``-updates`` and ``-security``.
Both apt formats are read: one-line (``sources.list``, ``*.list``) and deb822 (``*.sources``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

DEFAULT_MIRROR = "http://deb.debian.org/debian"
DEFAULT_SECURITY_MIRROR = "http://deb.debian.org/debian-security"


@dataclass(frozen=True)
class AptSource:
    """One repository apt fetches binary packages from."""

    uri: str
    suite: str
    components: tuple[str, ...]


@dataclass(frozen=True)
class Mirrors:
    """Where the base image's packages come from: the debootstrap mirror and the image's sources."""

    mirror: str
    sources: tuple[AptSource, ...]

    def sources_list(self) -> str:
        """The image's ``/etc/apt/sources.list`` (one-line format, ``main`` only)."""
        return "".join(f"deb {s.uri} {s.suite} main\n" for s in self.sources)


def parse_one_line(text: str) -> list[AptSource]:
    """Binary (``deb``) entries of a one-line sources file; options in ``[...]`` are skipped."""
    sources = []
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if not line.startswith("deb "):
            continue
        rest = line[len("deb "):].strip()
        if rest.startswith("["):
            rest = rest.partition("]")[2].strip()
        fields = rest.split()
        if len(fields) >= 3:
            sources.append(AptSource(uri=fields[0].rstrip("/"), suite=fields[1], components=tuple(fields[2:])))
    return sources


def parse_deb822(text: str) -> list[AptSource]:
    """Binary entries of a deb822 ``.sources`` file (stanzas separated by blank lines)."""
    sources = []
    for stanza in _stanzas(text):
        if "deb" not in stanza.get("types", "").split() or stanza.get("enabled", "yes").lower() == "no":
            continue
        components = tuple(stanza.get("components", "").split())
        for uri in stanza.get("uris", "").split():
            for suite in stanza.get("suites", "").split():
                sources.append(AptSource(uri=uri.rstrip("/"), suite=suite, components=components))
    return sources


def choose_mirrors(sources: list[AptSource], suite: str) -> Mirrors:
    """The host's mirror for ``suite`` and its entries for the suite's updates and security.

    Falls back to deb.debian.org where the host has no entry (not Debian, or another release).
    """
    wanted = (suite, f"{suite}-updates", f"{suite}-security")
    chosen: dict[str, AptSource] = {}
    for source in sources:
        if source.suite in wanted and "main" in source.components and source.suite not in chosen:
            chosen[source.suite] = source
    if suite not in chosen:
        chosen[suite] = AptSource(DEFAULT_MIRROR, suite, ("main",))
        chosen.setdefault(f"{suite}-updates", AptSource(DEFAULT_MIRROR, f"{suite}-updates", ("main",)))
    chosen.setdefault(f"{suite}-security", AptSource(DEFAULT_SECURITY_MIRROR, f"{suite}-security", ("main",)))
    ordered = tuple(chosen[s] for s in wanted if s in chosen)
    return Mirrors(mirror=chosen[suite].uri, sources=ordered)


def host_sources(apt_dir: Path = Path("/etc/apt")) -> list[AptSource]:
    """Every binary entry apt reads on this host (files apt ignores, like ``*.disabled``, are skipped)."""
    files = [apt_dir / "sources.list"]
    parts = apt_dir / "sources.list.d"
    if parts.is_dir():
        files += sorted(p for p in parts.iterdir() if p.suffix in (".list", ".sources"))
    sources: list[AptSource] = []
    for path in files:
        try:
            text = path.read_text(errors="replace")
        except OSError:
            continue
        sources += parse_deb822(text) if path.suffix == ".sources" else parse_one_line(text)
    return sources


def _stanzas(text: str) -> list[dict[str, str]]:
    stanzas: list[dict[str, str]] = []
    current: dict[str, str] = {}
    key = ""
    for raw in text.splitlines() + [""]:
        if raw.startswith("#"):
            continue
        if not raw.strip():
            if current:
                stanzas.append(current)
            current, key = {}, ""
        elif raw[0] in " \t" and key:
            current[key] += " " + raw.strip()
        elif ":" in raw:
            key, _, value = raw.partition(":")
            key = key.strip().lower()
            current[key] = value.strip()
    return stanzas
