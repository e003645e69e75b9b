"""``artm-compose plot``: the per-pass score curves of ``scores.json`` as a PNG or SVG (matplotlib),
for CI logs and papers. One panel per series, in the dashboard's order."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from artm_compose.dashboard.snapshot import per_pass_series
from artm_compose.errors import ConfigError

FORMATS = (".png", ".svg", ".pdf")
COLUMNS = 3
PANEL_INCHES = (4.2, 2.8)


def read_scores(path: Path) -> dict[str, Any]:
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path} does not exist: no pass of this cluster has finished yet") from None
    except ValueError as error:
        raise ConfigError(f"{path} is not valid JSON: {error}") from None


def plot_scores(scores: dict[str, Any], out: Path, title: str = "") -> Path:
    """Draw every per-pass series of ``scores`` (a scores.json document) into ``out``; returns it."""
    out = Path(out)
    if out.suffix.lower() not in FORMATS:
        raise ConfigError(f"--out {out}: use a file name ending in {', '.join(FORMATS)}")
    series = per_pass_series(scores)
    if not series:
        raise ConfigError("the scores hold no finished pass: nothing to plot")
    try:
        import matplotlib
    except ImportError:
        raise ConfigError("plot needs matplotlib: pip install 'artm-compose[analysis]'") from None
    matplotlib.use("Agg")  # files only, never a window
    from matplotlib import pyplot

    first = int(scores.get("first_pass", 1))
    passes = list(range(first, first + len(scores["perplexity"])))
    rows = math.ceil(len(series) / COLUMNS)
    columns = min(COLUMNS, len(series))
    figure, axes = pyplot.subplots(rows, columns, squeeze=False,
                                   figsize=(PANEL_INCHES[0] * columns, PANEL_INCHES[1] * rows))
    try:
        for axis, (name, values) in zip(axes.flat, series.items()):
            points = [(p, v) for p, v in zip(passes, values) if v is not None]
            axis.plot([p for p, _ in points], [v for _, v in points], marker="o", markersize=3, linewidth=1.5)
            axis.set_title(name, fontsize=10)
            axis.set_xlabel("pass", fontsize=8)
            axis.tick_params(labelsize=8)
            axis.grid(alpha=0.3)
            if name == "perplexity" and points and min(v for _, v in points) > 0:
                axis.set_yscale("log")
        for axis in list(axes.flat)[len(series):]:
            axis.set_visible(False)
        if title:
            figure.suptitle(title)
        figure.tight_layout()
        out.parent.mkdir(parents=True, exist_ok=True)
        figure.savefig(out, dpi=110)
    finally:
        pyplot.close(figure)
    return out
