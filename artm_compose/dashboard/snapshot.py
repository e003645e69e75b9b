"""One look at a cluster, as a JSON-ready dict: what the dashboard, ``/metrics`` and the terminal show.

Everything comes from what the cluster already keeps, read-only:

* the state directory: ``cluster.json`` (members, data, vocabulary) and ``scores.json`` (per-pass
  series, written by the master after every pass);
* ``status --json`` (the runtime's view: members by role with liveness, cluster state);
* Redis, as the reader (acl.py): the master's progress record and every executor's heartbeat (state, pass,
  documents done of its share, instance id), ``CLUSTER NODES`` / ``INFO`` of every node, and the
  committed model (phi) for the top tokens of each topic.

Each part is read on its own and a part that cannot be read (Redis down, a Docker runtime seen
from a container without Docker) carries an ``error`` instead: a dashboard reports, it never fails.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from redis.cluster import RedisCluster
from redis.exceptions import RedisClusterException, RedisError

from artm_compose.acl import READER_USER, Login
from artm_compose.bootstrap import parse_cluster_nodes, parse_info
from artm_compose.data.vocab import Vocabulary, read_vocab
from artm_compose.engine import model_store as store
from artm_compose.engine.export import topic_names
from artm_compose.engine.protocol import read_progress
from artm_compose.errors import ArtmComposeError
from artm_compose.listing import ClusterEntry
from artm_compose.record import ClusterRecord
from artm_compose.redis_client import cluster_client, node_client
from artm_compose.slots import SLOT_COUNT
from artm_compose.state import StateDir, read_password

TOP_TOKENS = 10
# Browsers and scrapers asking at once share one look at most this old (seconds).
SNAPSHOT_MAX_AGE = 0.5
REDIS_TIMEOUT = 2.0
# Reads of the committed model tried per snapshot before showing the previous top tokens.
MODEL_READ_ATTEMPTS = 5
_REDIS_ERRORS = (RedisError, RedisClusterException, OSError)


# Shown first, in this order: the scores a topic modeller reads, then times, then traffic; others follow.
SERIES_ORDER = ("perplexity", "sparsity_phi", "sparsity_theta", "kernel_size", "kernel_purity", "kernel_contrast",
                "seconds", "bytes_moved")


def per_pass_series(scores: dict[str, Any]) -> dict[str, list[float | None]]:
    """Every per-pass numeric series of a ``scores.json`` document, by name, in display order.

    A series is a list as long as ``perplexity`` holding numbers (``seconds``, ``bytes_moved``, and
    whatever scores the engine adds, e.g. ``sparsity_phi``); a list of dicts of numbers
    (``phase_seconds``) gives one series per key, named ``<list>.<key>``, and so does a dict of such
    lists (``perplexity_by_class``: ``perplexity_by_class.@tag``). NaN and infinities
    become None (JSON has no NaN). Order: :data:`SERIES_ORDER`, then the rest by name.
    """
    passes = len(scores.get("perplexity") or [])
    series: dict[str, list[float | None]] = {}
    if not passes:
        return series
    for name, values in scores.items():
        if isinstance(values, dict):
            for key, inner in values.items():
                if isinstance(inner, list) and len(inner) == passes and all(_is_number(v) for v in inner):
                    series[f"{name}.{key}"] = [_finite(v) for v in inner]
            continue
        if not isinstance(values, list) or len(values) != passes:
            continue
        if all(_is_number(v) for v in values):
            series[name] = [_finite(v) for v in values]
        elif all(isinstance(v, dict) for v in values):
            keys = [k for k in values[0] if all(_is_number(v.get(k)) for v in values)]
            for key in keys:
                series[f"{name}.{key}"] = [_finite(v[key]) for v in values]
    rank = {name: index for index, name in enumerate(SERIES_ORDER)}
    return dict(sorted(series.items(), key=lambda item: (rank.get(item[0], len(rank)), item[0])))


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _finite(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


def top_tokens(phi: np.ndarray, vocab: Vocabulary, count: int = TOP_TOKENS) -> list[dict[str, Any]]:
    """The ``count`` most probable tokens of every topic column of ``phi`` (ties: vocabulary order)."""
    topics = []
    for topic, name in enumerate(topic_names(phi.shape[1])):
        column = phi[:, topic]
        order = np.argsort(-column, kind="stable")[:count]
        topics.append({"topic": name, "tokens": [
            {"token": vocab.tokens[i], "class_id": vocab.class_ids[i], "p": float(column[i])} for i in order]})
    return topics


def redis_nodes(addresses: list[tuple[str, int]], login: Login | None,
                timeout: float = REDIS_TIMEOUT) -> list[dict[str, Any]]:
    """Every node of the Redis Cluster: role, slots, memory, keys, health.

    The planned nodes (``addresses``) are asked for ``CLUSTER NODES``; nodes seen there but not
    planned (replicas) are asked too. A node that does not answer is listed with ``health`` down.
    """
    seen: dict[str, dict[str, Any]] = {}
    order: list[str] = []
    views: dict[str, Any] = {}
    for host, port in addresses:
        address = f"{host}:{port}"
        order.append(address)
        seen[address] = _ask_node(host, port, login, timeout)
        for view in seen[address].pop("view", []):
            views.setdefault(view.id, view)
    by_id = {node["id"]: address for address, node in seen.items() if node.get("id")}
    for node_id, view in views.items():
        if node_id not in by_id and view.ip:
            address = f"{view.ip}:{view.port}"
            if address not in seen:
                order.append(address)
                seen[address] = _ask_node(view.ip, view.port, login, timeout)
                seen[address].pop("view", None)
                by_id[node_id] = address
    nodes = []
    for address in order:
        node = seen[address]
        view = views.get(node.get("id", ""))
        flags = set(view.flags) if view is not None else set()
        slots = [list(r) for r in view.slots] if view is not None else []
        if view is not None:
            node["role"] = "replica" if "slave" in flags else "primary"
            node["flags"] = sorted(flags - {"myself"})
        node["address"] = address
        node["slots"] = slots
        node["slot_count"] = sum(last - first + 1 for first, last in slots)
        if node.get("error"):
            node["health"] = "down"
        elif flags & {"fail", "fail?", "handshake", "noaddr"}:
            node["health"] = "failing"
        elif node.get("cluster_state") != "ok":
            node["health"] = "cluster " + str(node.get("cluster_state", "?"))
        else:
            node["health"] = "ok"
        nodes.append(node)
    return nodes


def _ask_node(host: str, port: int, login: Login | None, timeout: float) -> dict[str, Any]:
    client = node_client(host, port, login and login.password, username=login and login.username, timeout=timeout)
    try:
        info = client.info()
        cluster_info = parse_info(client.execute_command("CLUSTER", "INFO"))
        view = parse_cluster_nodes(client.execute_command("CLUSTER", "NODES"))
    except _REDIS_ERRORS as error:
        return {"error": str(error) or type(error).__name__}
    finally:
        client.close()
    me = next((v for v in view if v.myself), None)
    return {"id": me.id if me else None, "view": view, "cluster_state": cluster_info.get("cluster_state"),
            "used_memory": int(info.get("used_memory", 0)), "maxmemory": int(info.get("maxmemory", 0)),
            # The keyspace section: DBSIZE would tell the same and is one more command for the reader.
            "keys": int(info.get("db0", {}).get("keys", 0)), "version": info.get("redis_version"),
            "uptime_seconds": int(info.get("uptime_in_seconds", 0)),
            "connected_clients": int(info.get("connected_clients", 0))}


@dataclass
class _Model:
    """The top tokens of the last committed model read, and which model that was."""

    key: tuple[str, int] | None = None
    pass_number: int | None = None
    topics: list[dict[str, Any]] = field(default_factory=list)


class ClusterWatch:
    """Snapshots of the cluster of one state directory; safe to call from several threads.

    Remembers between snapshots what a single look cannot tell: each executor's instance ids
    (a new one is a restart) and the top tokens of the committed model (read once per commit).
    """

    def __init__(self, state_dir: Path | str, *, top: int = TOP_TOKENS, inside: bool = False,
                 vocab_path: Path | None = None, password_file: Path | None = None):
        self.state = StateDir.at(state_dir)
        # The reader's password (acl.py): from the state directory, or where a container has its secret.
        self.password_file = password_file if password_file is not None else self.state.reader_password_file
        self.top = top
        # Inside the cluster's network (up --dashboard): no runtime to ask, and the vocabulary is mounted
        # elsewhere than the host path the record names.
        self.inside = inside
        self.vocab_path = vocab_path
        self._lock = threading.Lock()
        self._instances: dict[str, tuple[str | None, list[str]]] = {}  # executor -> (run, instances seen)
        self._model = _Model()
        self._vocab: tuple[str, Vocabulary] | None = None
        self._last: tuple[float, dict[str, Any]] | None = None

    @property
    def key(self) -> str:
        return str(self.state.root)

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            if self._last is not None and time.monotonic() - self._last[0] < SNAPSHOT_MAX_AGE:
                return self._last[1]
            result = self._take()
            self._last = (time.monotonic(), result)
            return result

    def _take(self) -> dict[str, Any]:
        snapshot: dict[str, Any] = {"state_dir": self.key, "time": time.time()}
        try:
            record = ClusterRecord.load(self.state)
        except ArtmComposeError as error:
            return {**snapshot, "cluster": self.state.root.name, "error": str(error)}
        snapshot.update(cluster=record.cluster, runtime=record.runtime, stored_status=str(record.status))
        snapshot["status"] = self._status()
        snapshot["scores"] = self._scores()
        login = Login(READER_USER, read_password(self.password_file)) if self.password_file.exists() else None
        client, redis_error = _client(record, login)
        progress = None
        if client is not None:
            try:
                progress = read_progress(client, record.cluster)
            except _REDIS_ERRORS as error:
                redis_error = str(error)
        snapshot["training"] = _training(progress, snapshot["scores"])
        snapshot["executors"] = self._executors(record, progress, snapshot["status"], snapshot["training"])
        nodes = redis_nodes(record.addresses, login)
        covered = sum(n["slot_count"] for n in nodes if n.get("role") == "primary" and not n.get("error"))
        snapshot["redis"] = {"nodes": nodes, "slots_covered": covered, "slot_total": SLOT_COUNT}
        snapshot["model"] = self._top_tokens(client, record)
        if client is not None:
            client.close()
        if redis_error:
            snapshot["redis_error"] = redis_error
        return snapshot

    # -- parts ----------------------------------------------------------------------------------

    def _status(self) -> dict[str, Any]:
        from artm_compose.api import Cluster  # the API imports the runtimes; keep this module light

        try:
            if self.inside:
                from artm_compose.dashboard.inside import inside_status

                return inside_status(self.state, self.password_file).to_dict()
            return Cluster.from_state(self.state.root).status().to_dict()
        except Exception as error:  # noqa: BLE001 - e.g. Docker unreachable: report it, keep the rest
            return {"error": f"{type(error).__name__}: {error}"}

    def _scores(self) -> dict[str, Any]:
        try:
            scores = json.loads(self.state.scores.read_text())
        except FileNotFoundError:
            return {"series": {}}
        except (OSError, ValueError) as error:
            return {"series": {}, "error": f"{self.state.scores}: {error}"}
        series = per_pass_series(scores)
        first = int(scores.get("first_pass", 1))
        passes = len(scores.get("perplexity") or [])
        return {"run": scores.get("run"), "passes": list(range(first, first + passes)), "series": series}

    def _executors(self, record: ClusterRecord, progress: dict[str, Any] | None,
                   status: dict[str, Any], training: dict[str, Any]) -> list[dict[str, Any]]:
        beats = (progress or {}).get("executors") or {}
        members = {m["name"]: m for m in status.get("members", []) if m.get("role") == "executor"}
        rows = []
        for planned in record.executors:
            executor_id = str(planned.id)
            beat = beats.get(executor_id)
            member = members.get(planned.name, {})
            run, seen = self._instances.get(executor_id, (None, []))
            if beat and beat.get("run") and beat.get("run") != run:  # a new run starts every executor anew
                run, seen = beat["run"], []
            if beat and beat.get("instance") and beat["instance"] not in seen:
                seen.append(beat["instance"])
            self._instances[executor_id] = (run, seen)
            alive = beat is not None or bool(member.get("alive"))
            row = {"id": planned.id, "name": planned.name, "node": planned.node,
                   "batch_range": list(planned.batch_range), "token_range": list(planned.token_range),
                   "heartbeat": beat is not None, "process_alive": member.get("alive"), "alive": alive,
                   "restarts": max(0, len(seen) - 1),
                   "state": None if alive else "finished" if training.get("state") == "done" else "gone"}
            if beat:
                row.update(state=beat.get("state"), pass_number=beat.get("pass"), host=beat.get("host"),
                           pid=beat.get("pid"), documents=beat.get("documents"),
                           documents_done=beat.get("documents_done"), error=beat.get("error"),
                           heartbeat_age=max(0.0, time.time() - float(beat.get("time", time.time()))))
            rows.append(row)
        return rows

    def _top_tokens(self, client: RedisCluster | None, record: ClusterRecord) -> dict[str, Any]:
        if client is None or record.training is None:
            return self._model_dict()
        cluster = record.cluster
        try:
            committed = store.read_model_record(client, cluster)
            if committed is None:
                return self._model_dict()
            for _attempt in range(MODEL_READ_ATTEMPTS):
                key = (committed.run, committed.generation)
                if key == self._model.key:
                    break
                vocab = self._read_vocab(self.vocab_path or record.training.vocab_path)
                phi = store.read_range(client, committed.layout, committed.generation, 0, committed.layout.vocab_size)
                after = store.read_model_record(client, cluster)
                # Two phi buffers: the one read is intact unless two more commits happened meanwhile;
                # then read the newer one (short passes on a loaded machine can overtake one read).
                if after is not None and after.run == committed.run and after.generation > committed.generation + 1:
                    committed = after
                    continue
                if len(vocab) == len(phi):
                    self._model = _Model(key=key, pass_number=committed.pass_number,
                                         topics=top_tokens(phi, vocab, self.top))
                break
        except (ArtmComposeError, *_REDIS_ERRORS) as error:
            return {**self._model_dict(), "error": str(error)}
        return self._model_dict()

    def _model_dict(self) -> dict[str, Any]:
        model = self._model
        return {"pass": model.pass_number, "generation": None if model.key is None else model.key[1],
                "topics": model.topics}

    def _read_vocab(self, path: Path) -> Vocabulary:
        if self._vocab is None or self._vocab[0] != str(path):
            self._vocab = (str(path), read_vocab(path))
        return self._vocab[1]


def _client(record: ClusterRecord, login: Login | None) -> tuple[RedisCluster | None, str | None]:
    try:
        return cluster_client(record.addresses, login and login.password, username=login and login.username,
                              timeout=REDIS_TIMEOUT), None
    except _REDIS_ERRORS as error:
        return None, str(error)


def _training(progress: dict[str, Any] | None, scores: dict[str, Any]) -> dict[str, Any]:
    """The run's state and pass: the master's record in Redis while it is there, else scores.json."""
    if progress is None or progress.get("state") == "none":
        passes = scores.get("passes") or []
        return {"state": "done" if passes else "none", "pass": passes[-1] if passes else 0,
                "passes": len(passes) or None, "source": "scores.json"}
    master = progress.get("master")
    return {"state": progress.get("state"), "pass": progress.get("pass"), "passes": progress.get("passes"),
            "phase": progress.get("phase"), "error": progress.get("error"), "run": progress.get("run"),
            "master_alive": master is not None, "source": "redis",
            "perplexity": progress.get("perplexity") or [], "seconds": progress.get("seconds") or []}


def clusters_json(watches: list[ClusterWatch],
                  listed: Callable[[ClusterWatch], ClusterEntry | None] = lambda _watch: None) -> list[dict[str, Any]]:
    """The clusters a dashboard shows: key (its state dir), name, and ``listed``: its ``ls`` row, if any."""
    shown = []
    for watch in watches:
        entry = listed(watch)
        try:
            name = ClusterRecord.load(watch.state).cluster
        except ArtmComposeError:
            name = entry.name if entry is not None else None
        row: dict[str, Any] = {"key": watch.key, "name": name or watch.state.root.name, "state_dir": watch.key}
        if entry is not None:
            row["listed"] = entry.to_dict()
        shown.append(row)
    return shown
