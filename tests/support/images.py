"""Helpers shared by the image tests."""

from __future__ import annotations

import shutil
from pathlib import Path

from artm_compose.images.build import ARTM_CONTEXT, ARTM_DOCKERFILE, REDIS_CONTEXT, source_root
from artm_compose.images.wheelhouse import project_files


def snapshot_sources(destination: Path) -> Path:
    """Copy every input of the image builds to ``destination`` (immune to edits made meanwhile)."""
    root = source_root()
    for path in [root / ARTM_DOCKERFILE, *(root / source for source in [*REDIS_CONTEXT.values(),
                                                                         *ARTM_CONTEXT.values()]),
                 *project_files(root)]:
        copy = destination / path.relative_to(root)
        copy.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, copy)
    return destination
