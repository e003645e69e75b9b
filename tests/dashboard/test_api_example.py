"""The README's BigARTM-style example runs as written, here on a real two-modality corpus (words and
@section of the installed packages), where get_phi() is indexed by (class_id, token)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from artm_compose.data.prepare import prepare_vw
from support.engine import DPKG_STATUS
from support.paths import ROOT
from support.ports import free_port_block, requires_redis

EXAMPLE = ROOT / "examples" / "bigartm_style.py"
TOPICS = 4


def dpkg_vw(path: Path) -> Path:
    """One VW line per installed package: description words, then ``|@section SECTION``."""
    lines = []
    for record in DPKG_STATUS.read_text(encoding="utf-8", errors="replace").split("\n\n"):
        fields = dict(re.findall(r"^(Package|Section|Description): *(.*)$", record, re.M))
        words = re.findall(r"[a-z]{4,}", record.split("Description:", 1)[-1].lower())
        if {"Package", "Section"} <= set(fields) and len(words) >= 3:
            section = re.sub(r"[^a-z0-9_-]", "_", fields["Section"].lower())
            lines.append(f"{fields['Package']} {' '.join(words)} |@section {section}")
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.integration
@requires_redis
@pytest.mark.skipif(not DPKG_STATUS.exists(), reason="needs /var/lib/dpkg/status for a real corpus")
def test_the_readme_example_trains_shows_multimodal_phi_and_exports(tmp_path):
    corpus = tmp_path / "corpus"
    prepare_vw(dpkg_vw(tmp_path / "packages.vw"), corpus, batch_size=200)
    assert "@section" in (corpus / "vocab.txt").read_text()
    result = subprocess.run([sys.executable, str(EXAMPLE), str(corpus), "--topics", str(TOPICS), "--passes", "3",
                             "--nodes", "1", "--base-port", str(free_port_block(1)), "--state-dir",
                             str(tmp_path / "state"), "--export", str(tmp_path / "model")],
                            capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = result.stdout
    per_pass = re.search(r"^perplexity per pass: (.*)$", out, re.M).group(1).split()
    assert len(per_pass) == 3 and float(per_pass[-1]) < float(per_pass[0])
    # Rows are (class_id, token) with two modalities.
    assert re.search(rf"^phi: \d+ tokens x {TOPICS} topics, index \['class_id', 'token'\]$", out, re.M), out
    topic_lines = re.findall(r"^topic_\d+ top tokens: (.*)$", out, re.M)
    assert len(topic_lines) == TOPICS and all(len(line.split()) == 8 for line in topic_lines), topic_lines
    assert re.search(rf"^theta: \d+ documents x {TOPICS} topics, index item_id$", out, re.M), out
    assert re.search(r"^first document's main topic: topic_\d+$", out, re.M), out
    assert (tmp_path / "model" / "p_wt.bin").is_file()
    assert "stopped redis-0" in out and not list((tmp_path / "state" / "pids").glob("*.json"))
