"""One dashboard for every cluster `artm-compose ls` lists: the overview page, each cluster's view, the API
and /metrics with a ``cluster`` label, in a real headless Chromium over two real local clusters."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from urllib.error import HTTPError
from urllib.parse import quote

import pytest
from click.testing import CliRunner
from prometheus_client.parser import text_string_to_metric_families

from artm_compose.cli.group import cli
from artm_compose.dashboard.server import listed_state_dirs, make_server
from artm_compose.listing import ClusterEntry, list_clusters
from support.browser import artifacts_dir, dump_dom, requires_chromium, screenshot
from support.dashboard import get, wait_until
from support.engine import dpkg_corpus
from support.ports import requires_redis

TRAIN_TIMEOUT = 120.0
PASSES = 2


def _entry(name: str, state_dir: str, runtime: str = "local") -> ClusterEntry:
    return ClusterEntry(name=name, runtime=runtime, state_dir=state_dir, running=1, members=1, since="2026-01-01")


def test_listed_state_dirs_keep_one_row_per_state_dir_and_skip_unlabelled():
    rows = [_entry("a", "/s/a"), _entry("renamed", "/s/a", "compose"), _entry("b", "/s/b"), _entry("c", "")]
    found = listed_state_dirs(rows)
    assert list(found) == [Path("/s/a"), Path("/s/b")]
    assert found[Path("/s/a")].name == "a"


def test_all_is_refused_with_a_state_dir(tmp_path):
    result = CliRunner().invoke(cli, ["dashboard", "--all", "--state-dir", str(tmp_path)])
    assert result.exit_code != 0 and "without --state-dir" in str(result.exception or result.output)


@pytest.fixture
def serve_listed():
    """Serve a dashboard of what ``ls`` lists, narrowed to ``state_dirs``: other clusters of this machine
    (other people's tests) are not looked at; yields a function returning the base URL."""
    servers = []

    def start(state_dirs: set[str]) -> str:
        server = make_server(port=0, listing=lambda: [e for e in list_clusters() if e.state_dir in state_dirs])
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}/"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def _passes(state: Path) -> int:
    try:
        return len(json.loads((state / "scores.json").read_text()).get("perplexity", []))
    except (OSError, ValueError):
        return 0


@pytest.mark.integration
@requires_redis
@requires_chromium
def test_one_dashboard_lists_every_cluster_and_opens_each(local_cluster, serve_listed, tmp_path):
    suffix = os.getpid() % 100000
    trained = local_cluster(nodes=1, name=f"alltrained{suffix}", data_dir=dpkg_corpus(tmp_path / "dpkg"), topics=3,
                            iterations=PASSES, executors_per_node=1)
    idle = local_cluster(nodes=2, name=f"allidle{suffix}")
    wait_until(lambda: _passes(trained.state.root) == PASSES, TRAIN_TIMEOUT,
               f"{PASSES} passes of {trained.config.name}")
    mine = {str(trained.state.root): trained.config.name, str(idle.state.root): idle.config.name}
    url = serve_listed(set(mine))

    listed = json.loads(get(url + "api/clusters")[1])
    assert {c["key"]: c["name"] for c in listed} == mine
    assert all(c["listed"]["runtime"] == "local" and c["listed"]["status"].startswith("running") for c in listed)

    page = dump_dom(url)
    assert page.find_all("body")[0].attrs.get("data-loaded") == "yes", "the page's script did not draw the overview"
    assert page.by_id("cluster-view").attrs.get("hidden") is not None
    rows = {row.attrs["data-name"]: row for row in page.find_all("tr", "cluster-row")}
    assert set(rows) == {trained.config.name, idle.config.name}
    assert all(row.attrs["data-health"] == "healthy" for row in rows.values()), [r.text for r in rows.values()]
    done = rows[trained.config.name]
    assert done.find_all("td", "pass")[0].text == f"{PASSES} / {PASSES}"
    assert float(done.find_all("td", "perplexity")[0].text) > 1
    assert rows[idle.config.name].find_all("td", "perplexity")[0].text == ""
    shot = screenshot(url, artifacts_dir() / "dashboard-all.png", size=(1400, 500))
    assert shot.stat().st_size > 10_000

    link = rows[idle.config.name].find_all("a", "open")[0].attrs["href"]
    assert link == f"?cluster={quote(str(idle.state.root), safe='')}"
    view = dump_dom(url + link)
    assert view.by_id("overview").attrs.get("hidden") is not None
    assert idle.config.name in view.find_all(data_field="cluster")[0].text
    assert len(view.find_all("tr", "redis-node")) == 2
    assert [a.text for a in view.by_id("clusters").find_all("a")][0] == "all clusters"

    families = {f.name: f for f in text_string_to_metric_families(get(url + "metrics")[1])}
    info = {s.labels["cluster"]: s.labels for s in families["artm_cluster_info"].samples}
    assert set(info) == set(mine.values()) and {i["runtime"] for i in info.values()} == {"local"}
    memory = [s.labels["cluster"] for s in families["artm_redis_memory_bytes"].samples]
    assert sorted(memory) == sorted([trained.config.name, idle.config.name, idle.config.name])
    assert [s.labels["cluster"] for s in families["artm_perplexity"].samples] == [trained.config.name]

    one = {f.name: f for f in text_string_to_metric_families(get(url + "metrics" + link)[1])}
    assert {s.labels["cluster"] for s in one["artm_redis_memory_bytes"].samples} == {idle.config.name}
    with pytest.raises(HTTPError, match="404"):
        get(url + "metrics?cluster=nowhere")
