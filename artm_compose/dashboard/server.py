"""The dashboard's HTTP server: the standard library's threading server, no framework, no CDN.

Routes (all GET):

* ``/``: the page (``static/index.html`` with ``dashboard.js`` drawing SVG charts; it polls the API);
* ``/api/clusters``: the clusters shown, ``[{key, name, state_dir}]``;
* ``/api/snapshot?cluster=KEY``: one cluster's snapshot (see :mod:`.snapshot`; the first cluster
  without ``cluster``);
* ``/api/status?cluster=KEY``: the ``artm-compose status --json`` document;
* ``/metrics``: every cluster in the Prometheus text format (see :mod:`.metrics`);
* ``/healthz``: ``ok``.
"""

from __future__ import annotations

import json
import math
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

DEFAULT_PORT = DEFAULT_DASHBOARD_PORT
LOCAL_HOST = "127.0.0.1"
_STATIC_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
                 ".css": "text/css; charset=utf-8"}

StateDirs = Callable[[], list[Path]]


class Clusters:
    """The clusters a dashboard shows: ``state_dirs()`` is asked again on every listing, so
    clusters started later appear; each state directory keeps one :class:`ClusterWatch`."""

    def __init__(self, state_dirs: StateDirs, watch: Callable[[Path], ClusterWatch] = ClusterWatch):
        self._state_dirs = state_dirs
        self._watch = watch
        self._watches: dict[str, ClusterWatch] = {}
        self._lock = threading.Lock()

    def watches(self) -> list[ClusterWatch]:
        with self._lock:
            listed = []
            for path in self._state_dirs():
                watch = self._watch(path)
                listed.append(self._watches.setdefault(watch.key, watch))
            return listed

    def find(self, key: str | None) -> ClusterWatch | None:
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
                self._json(clusters_json(clusters.watches()))
            elif url.path in ("/api/snapshot", "/api/status"):
                watch = clusters.find(query.get("cluster"))
                if watch is None:
                    self._error(HTTPStatus.NOT_FOUND, f"no cluster {query.get('cluster')!r} on this dashboard")
                    return
                snapshot = watch.snapshot()
                self._json(snapshot if url.path == "/api/snapshot" else snapshot.get("status", {}))
            elif url.path == "/metrics":
                text = render_metrics(w.snapshot() for w in clusters.watches())
                self._send(HTTPStatus.OK, METRICS_CONTENT_TYPE, text.encode())
            elif url.path == "/healthz":
                self._send(HTTPStatus.OK, "text/plain; charset=utf-8", b"ok\n")
            else:
                self._error(HTTPStatus.NOT_FOUND, f"no page {url.path}")

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


def make_server(state_dirs: StateDirs, host: str = LOCAL_HOST, port: int = DEFAULT_PORT,
                watch: Callable[[Path], ClusterWatch] = ClusterWatch) -> ThreadingHTTPServer:
    """A bound server (``port`` 0 picks a free one: see ``server.server_address``); call ``serve_forever``.

    ``watch`` makes the :class:`ClusterWatch` of a state directory (e.g. one that looks from inside the cluster)."""
    server = ThreadingHTTPServer((host, port), make_handler(Clusters(state_dirs, watch)))
    server.daemon_threads = True
    return server
