"""The top-level compose/ examples are the templates' output for the example plan, not a stale copy."""

from __future__ import annotations

import runpy
from pathlib import Path

import yaml

from support.paths import ROOT

SCRIPT = ROOT / "scripts" / "render_examples.py"


def test_compose_examples_are_up_to_date():
    rendered: dict[Path, str] = runpy.run_path(str(SCRIPT))["rendered"]()
    stale = [path.name for path, text in rendered.items() if not path.exists() or path.read_text() != text]
    assert stale == [], f"compose/{', compose/'.join(stale)} stale: run scripts/render_examples.py"


def test_compose_examples_describe_four_nodes_and_eight_executors():
    for name in ("compose.yml", "stack.yml"):
        services = yaml.safe_load((ROOT / "compose" / name).read_text())["services"]
        assert sorted(s for s in services if s.startswith("redis-")) == [f"redis-{i}" for i in range(4)], name
        assert len([s for s in services if s.startswith("executor-")]) == 8, name
        assert "master" in services, name
