"""Helpers for the dashboard tests: Debian's headless Chromium, the DOM it dumps, test artifacts."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

import pytest

from support.paths import ROOT

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
requires_chromium = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (scripts/setup.sh)")
# Time the page's scripts get (virtual time: it runs as fast as the fetches answer).
SCRIPT_BUDGET_MS = 6000
BROWSER_TIMEOUT = 120
_VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


def artifacts_dir() -> Path:
    """Where tests leave files for people to look at (``$ARTM_COMPOSE_ARTIFACTS``, else ./artifacts)."""
    path = Path(os.environ.get("ARTM_COMPOSE_ARTIFACTS", ROOT / "artifacts"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def _chromium(*arguments: str) -> subprocess.CompletedProcess:
    assert CHROMIUM is not None
    with tempfile.TemporaryDirectory(prefix="artm-chromium-") as profile:
        command = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                   f"--user-data-dir={profile}", f"--virtual-time-budget={SCRIPT_BUDGET_MS}", *arguments]
        try:
            result = subprocess.run(command, capture_output=True, text=True, timeout=BROWSER_TIMEOUT)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"chromium did not finish within {BROWSER_TIMEOUT} s: {' '.join(command)}") from None
    assert result.returncode == 0, f"chromium failed ({result.returncode}): {result.stderr[-2000:]}"
    return result


def dump_dom(url: str) -> Element:
    """The page at ``url`` after its scripts ran, as an element tree."""
    return parse_html(_chromium("--dump-dom", url).stdout)


def screenshot(url: str, out: Path, size: tuple[int, int] = (1400, 1800)) -> Path:
    _chromium(f"--screenshot={out}", f"--window-size={size[0]},{size[1]}", url)
    assert out.is_file(), f"chromium wrote no screenshot to {out}"
    return out


@dataclass
class Element:
    tag: str
    attrs: dict[str, str]
    children: list[Element] = field(default_factory=list)
    parts: list[str] = field(default_factory=list)

    @property
    def text(self) -> str:
        return "".join(self.parts) + "".join(child.text for child in self.children)

    @property
    def classes(self) -> set[str]:
        return set(self.attrs.get("class", "").split())

    def iter(self):
        yield self
        for child in self.children:
            yield from child.iter()

    def find_all(self, tag: str | None = None, cls: str | None = None, **attrs: str) -> list[Element]:
        """Elements below (and including) this one with ``tag``, class ``cls`` and attributes ``attrs``
        (``data_series`` means ``data-series``)."""
        wanted = {name.replace("_", "-"): value for name, value in attrs.items()}
        return [e for e in self.iter()
                if (tag is None or e.tag == tag) and (cls is None or cls in e.classes)
                and all(e.attrs.get(name) == value for name, value in wanted.items())]

    def by_id(self, identifier: str) -> Element:
        found = self.find_all(id=identifier)
        assert found, f"no element with id {identifier!r}"
        return found[0]


class _TreeBuilder(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.root = Element("#document", {})
        self.stack = [self.root]

    def handle_starttag(self, tag, attrs):
        element = Element(tag, {name: value or "" for name, value in attrs})
        self.stack[-1].children.append(element)
        if tag not in _VOID:
            self.stack.append(element)

    def handle_startendtag(self, tag, attrs):
        self.stack[-1].children.append(Element(tag, {name: value or "" for name, value in attrs}))

    def handle_endtag(self, tag):
        for depth in range(len(self.stack) - 1, 0, -1):
            if self.stack[depth].tag == tag:
                del self.stack[depth:]
                return

    def handle_data(self, data):
        self.stack[-1].children.append(Element("#text", {}, parts=[data]))


def parse_html(text: str) -> Element:
    builder = _TreeBuilder()
    builder.feed(text)
    builder.close()
    return builder.root
