"""`artm-compose plot`: score curves to PNG/SVG without a browser."""

from __future__ import annotations

import json

import numpy as np
import pytest
from matplotlib import image

from artm_compose.cli import main
from artm_compose.dashboard.plot import plot_scores
from artm_compose.errors import ConfigError

SCORES = {"run": "abc", "first_pass": 1, "perplexity": [2100.0, 900.5, 610.2, 540.0, 512.3],
          "seconds": [0.9, 0.7, 0.71, 0.69, 0.7], "bytes_moved": [4e6, 4.1e6, 4.1e6, 4.2e6, 4.1e6],
          "sparsity_phi": [0.0, 0.2, 0.35, 0.41, 0.44],
          "phase_seconds": [{"e_step": 0.5, "aggregate": 0.1}] * 5}


def test_plot_writes_a_non_trivial_png_through_the_cli(tmp_path, capsys):
    state = tmp_path / "state"
    state.mkdir()
    (state / "scores.json").write_text(json.dumps(SCORES))
    out = tmp_path / "scores.png"
    with pytest.raises(SystemExit) as exited:
        main(["plot", "--state-dir", str(state), "--out", str(out)])
    assert exited.value.code == 0 and capsys.readouterr().out.strip() == str(out)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    pixels = image.imread(out)
    height, width = pixels.shape[:2]
    assert width >= 800 and height >= 500
    ink = (pixels[..., :3].mean(axis=2) < 0.9).mean()  # share of pixels that are not (near) white
    assert 0.01 < ink < 0.5, ink
    # Six series (phase_seconds gives two) in two rows of three panels.
    assert len(np.unique(pixels[..., :3].reshape(-1, 3), axis=0)) > 50


def test_plot_svg_names_every_series_and_refuses_bad_input(tmp_path):
    out = plot_scores(SCORES, tmp_path / "scores.svg", title="c: run abc")
    text = out.read_text()
    for name in ("perplexity", "sparsity_phi", "seconds", "bytes_moved", "phase_seconds.e_step",
                 "phase_seconds.aggregate"):
        assert name in text
    with pytest.raises(ConfigError, match="scores.gif"):
        plot_scores(SCORES, tmp_path / "scores.gif")
    with pytest.raises(ConfigError, match="no finished pass"):
        plot_scores({"perplexity": []}, tmp_path / "empty.png")
    with pytest.raises(SystemExit) as exited:
        main(["plot", "--state-dir", str(tmp_path / "none"), "--out", str(tmp_path / "x.png")])
    assert exited.value.code == 2
