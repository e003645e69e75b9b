"""Content fingerprints: the tag of an image is the hash of everything that went into it."""

from __future__ import annotations

import hashlib
from pathlib import Path

SKIPPED_DIRS = frozenset({"__pycache__"})
SKIPPED_SUFFIXES = frozenset({".pyc", ".pyo"})
CHUNK = 1 << 20


class Fingerprint:
    """An order-sensitive SHA-256 over labelled texts and files (labels keep inputs apart)."""

    def __init__(self) -> None:
        self._hash = hashlib.sha256()

    def add_text(self, label: str, text: str) -> Fingerprint:
        """Mix in a value under ``label``."""
        self._add(label, text.encode())
        return self

    def add_file(self, label: str, path: Path) -> Fingerprint:
        """Mix in a file's bytes (not its name or times, so copies and checkouts agree)."""
        digest = hashlib.sha256()
        with path.open("rb") as stream:
            while chunk := stream.read(CHUNK):
                digest.update(chunk)
        self._add(label, digest.digest())
        return self

    def add_tree(self, label: str, root: Path) -> Fingerprint:
        """Mix in every file under ``root`` by relative path, skipping byte-code caches."""
        for path in tree_files(root):
            self.add_file(f"{label}/{path.relative_to(root).as_posix()}", path)
        return self

    def hexdigest(self, length: int = 12) -> str:
        """The first ``length`` hex digits (12 = 48 bits: collisions are not a concern here)."""
        return self._hash.hexdigest()[:length]

    def _add(self, label: str, data: bytes) -> None:
        for part in (label.encode(), data):
            self._hash.update(len(part).to_bytes(8, "big"))
            self._hash.update(part)


def tree_files(root: Path) -> list[Path]:
    """Files under ``root`` in a stable order, without ``__pycache__`` and byte code."""
    return sorted(p for p in root.rglob("*")
                  if p.is_file() and not SKIPPED_DIRS.intersection(p.relative_to(root).parts)
                  and p.suffix not in SKIPPED_SUFFIXES)
