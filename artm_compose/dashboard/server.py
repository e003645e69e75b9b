"""The dashboard's HTTP server: the standard library's threading server, no framework, no CDN.

Routes (all GET):

* ``/``: the page (``static/index.html`` with ``dashboard.js`` drawing SVG charts; it polls the API);
* ``/api/clusters``: the clusters shown, ``[{key, name, state_dir}]`` (with ``--all`` each also has
  ``listed``: its ``artm-compose ls`` row);
* ``/api/snapshot?cluster=KEY``: one cluster's snapshot (see :mod:`.snapshot`; the first cluster
  without ``cluster``);
* ``/api/status?cluster=KEY``: the ``artm-compose status --json`` document;
* ``/metrics``: every cluster in the Prometheus text format (see :mod:`.metrics`); ``?cluster=KEY``
  one of them, for Prometheus' multi-target pattern (one scrape per cluster);
* ``/healthz``: ``ok``.
"""

from __future__ import annotations

import json
import math
import socketserver
import threading
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

from artm_compose.config import DEFAULT_DASHBOARD_PORT
from artm_compose.dashboard.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from artm_compose.dashboard.metrics import render_metrics
from artm_compose.dashboard.snapshot import ClusterWatch, clusters_json
from artm_compose.listing import ClusterEntry

DEFAULT_PORT = DEFAULT_DASHBOARD_PORT
LOCAL_HOST = "127.0.0.1"
_STATIC_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
                 ".css": "text/css; charset=utf-8"}

StateDirs = Callable[[], list[Path]]
Listing = Callable[[], list[ClusterEntry]]


def listed_state_dirs(entries: list[ClusterEntry]) -> dict[Path, ClusterEntry]:
    """The state directories of ``ls`` entries, each with its first entry (a state directory whose cluster
    was renamed may have two). Entries without one (not started by this tool) cannot be looked at."""
    found: dict[Path, ClusterEntry] = {}
    for entry in entries:
        if entry.state_dir:
            found.setdefault(Path(entry.state_dir), entry)
    return found


class Clusters:
    """The clusters a dashboard shows: ``state_dirs()`` (or, with ``--all``, ``listing()``: what
    ``artm-compose ls`` lists) is asked again on every listing, so clusters started later appear and
    clusters gone disappear; each state directory keeps one :class:`ClusterWatch`."""

    def __init__(self, state_dirs: StateDirs | None = None, watch: Callable[[Path], ClusterWatch] = ClusterWatch,
                 listing: Listing | None = None):
        if (state_dirs is None) == (listing is None):
            raise ValueError("give either state_dirs or listing")
        self._state_dirs = state_dirs
        self._listing = listing
        self._watch = watch
        self._watches: dict[str, ClusterWatch] = {}
        self._listed: dict[str, ClusterEntry] = {}
        self._lock = threading.Lock()

    @property
    def lists_all(self) -> bool:
        return self._listing is not None

    def watches(self) -> list[ClusterWatch]:
        with self._lock:
            if self._listing is not None:
                found = listed_state_dirs(self._listing())
                paths = list(found)
            else:
                found, paths = {}, self._state_dirs() if self._state_dirs is not None else []
            shown = []
            for path in paths:
                watch = self._watch(path)
                shown.append(self._watches.setdefault(watch.key, watch))
                if path in found:
                    self._listed[watch.key] = found[path]
            return shown

    def listed(self, watch: ClusterWatch) -> ClusterEntry | None:
        """The ``ls`` row ``watch`` was last listed with (None without ``--all``)."""
        return self._listed.get(watch.key)

    def find(self, key: str | None) -> ClusterWatch | None:
        # A key seen before needs no new listing (with --all: Docker asked on every poll of every browser).
        if key is not None and key in self._watches:
            return self._watches[key]
        watches = self.watches()
        if key is None:
            return watches[0] if watches else None
        return next((w for w in watches if key in (w.key, w.state.root.name)), None)


def json_safe(value: Any) -> Any:
    """``value`` with NaN and infinities as None: JSON (and so the browser) has no NaN."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def make_handler(clusters: Clusters) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "artm-compose-dashboard"

        def do_GET(self) -> None:  # noqa: N802 - the http.server interface
            try:
                self._route()
            except Exception as error:  # noqa: BLE001 - answer with the reason; the server goes on serving
                self._error(HTTPStatus.INTERNAL_SERVER_ERROR, f"{type(error).__name__}: {error}")

        def _route(self) -> None:
            url = urlparse(self.path)
            query = {k: v[-1] for k, v in parse_qs(url.query).items()}
            if url.path in ("/", "/index.html"):
                self._static("index.html")
            elif url.path.startswith("/static/"):
                self._static(url.path.removeprefix("/static/"))
            elif url.path == "/api/clusters":
                self._json(clusters_json(clusters.watches(), clusters.listed))
            elif url.path in ("/api/snapshot", "/api/status"):
                watch = self._cluster(query.get("cluster"))
                if watch is not None:
                    snapshot = watch.snapshot()
                    self._json(snapshot if url.path == "/api/snapshot" else snapshot.get("status", {}))
            elif url.path == "/metrics":
                if "cluster" in query:
                    watch = self._cluster(query["cluster"])
                    watches = [watch] if watch is not None else None
                else:
                    watches = clusters.watches()
                if watches is not None:
                    text = render_metrics(w.snapshot() for w in watches)
                    self._send(HTTPStatus.OK, METRICS_CONTENT_TYPE, text.encode())
            elif url.path == "/healthz":
                self._send(HTTPStatus.OK, "text/plain; charset=utf-8", b"ok\n")
            else:
                self._error(HTTPStatus.NOT_FOUND, f"no page {url.path}")

        def _cluster(self, key: str | None) -> ClusterWatch | None:
            """The cluster of ``key`` (its state dir or the directory's name), else answer 404 and None."""
            watch = clusters.find(key)
            if watch is None:
                self._error(HTTPStatus.NOT_FOUND, f"no cluster {key!r} on this dashboard")
            return watch

        def _static(self, name: str) -> None:
            suffix = Path(name).suffix
            resource = resources.files("artm_compose.dashboard").joinpath("static", name)
            if "/" in name or suffix not in _STATIC_TYPES or not resource.is_file():
                self._error(HTTPStatus.NOT_FOUND, f"no file {name}")
                return
            self._send(HTTPStatus.OK, _STATIC_TYPES[suffix], resource.read_bytes())

        def _json(self, value: Any) -> None:
            body = json.dumps(json_safe(value), allow_nan=False).encode()
            self._send(HTTPStatus.OK, "application/json", body)

        def _error(self, status: HTTPStatus, message: str) -> None:
            self._send(status, "text/plain; charset=utf-8", (message + "\n").encode())

        def _send(self, status: HTTPStatus, content_type: str, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet: browsers poll every second
            pass

    return Handler


class UnixHTTPServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    """The dashboard on a Unix socket: in a Swarm the relay on the manager's loopback (:mod:`.relay`) passes
    connections to it, since a Swarm service cannot publish a port on 127.0.0.1 only."""

    daemon_threads = True


def make_server(state_dirs: StateDirs | None = None, host: str = LOCAL_HOST, port: int = DEFAULT_PORT,
                watch: Callable[[Path], ClusterWatch] = ClusterWatch, listing: Listing | None = None,
                unix_socket: Path | None = None) -> socketserver.BaseServer:
    """A bound server (``port`` 0 picks a free one: see ``server.server_address``); call ``serve_forever``.

    It shows the clusters of ``state_dirs()`` or of ``listing()`` (``ls``'s entries). ``watch`` makes the
    :class:`ClusterWatch` of a state directory (e.g. one that looks from inside the cluster). With
    ``unix_socket`` it listens there (a socket left by an earlier server is replaced) instead of on a port."""
    handler = make_handler(Clusters(state_dirs, watch, listing))
    if unix_socket is not None:
        unix_socket.unlink(missing_ok=True)
        return UnixHTTPServer(str(unix_socket), handler)
    server = ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    return server
