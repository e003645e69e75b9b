"""The dashboard's pure parts: per-pass series, top tokens, the Prometheus text, JSON without NaN."""

from __future__ import annotations

import json
import math

import numpy as np
from prometheus_client.parser import text_string_to_metric_families

from artm_compose.dashboard.metrics import render_metrics
from artm_compose.dashboard.server import json_safe
from artm_compose.dashboard.snapshot import per_pass_series, top_tokens
from artm_compose.data.vocab import make_vocab


def test_per_pass_series_finds_every_numeric_series_and_flattens_dicts():
    scores = {"run": "r", "topics": 4, "perplexity": [10.0, 5.0, 4.0], "seconds": [1, 2, 3],
              "bytes_moved": [100, 200, 300], "sparsity_phi": [0.1, 0.2, float("nan")],
              "phase_seconds": [{"e_step": 1.0, "note": "x"}, {"e_step": 2.0, "note": "y"}, {"e_step": 3.0, "note": "z"}],
              "short": [1.0], "labels": ["a", "b", "c"], "flag": [True, False, True]}
    series = per_pass_series(scores)
    assert list(series) == ["perplexity", "sparsity_phi", "seconds", "bytes_moved", "phase_seconds.e_step"]
    assert series == {"perplexity": [10.0, 5.0, 4.0], "seconds": [1.0, 2.0, 3.0], "bytes_moved": [100.0, 200.0, 300.0],
                      "sparsity_phi": [0.1, 0.2, None], "phase_seconds.e_step": [1.0, 2.0, 3.0]}
    assert per_pass_series({"perplexity": []}) == {}
    by_class = per_pass_series({"perplexity": [3.0, 2.0], "perplexity_by_class": {"@tag": [5.0, 4.0], "@x": [1.0]},
                                "top_tokens": [["a", "b"], ["c", "d"]]})
    assert by_class == {"perplexity": [3.0, 2.0], "perplexity_by_class.@tag": [5.0, 4.0]}


def test_top_tokens_orders_by_probability_with_ties_in_vocabulary_order():
    vocab = make_vocab(["a", "b", "c", "d"], ["@default_class", "@default_class", "@default_class", "@tag"])
    phi = np.array([[0.1, 0.4], [0.5, 0.1], [0.1, 0.4], [0.3, 0.1]], dtype=np.float32)
    topics = top_tokens(phi, vocab, count=3)
    assert [t["topic"] for t in topics] == ["topic_0", "topic_1"]
    assert [k["token"] for k in topics[0]["tokens"]] == ["b", "d", "a"]
    assert topics[0]["tokens"][1]["class_id"] == "@tag"
    assert [k["token"] for k in topics[1]["tokens"]] == ["a", "c", "b"]
    assert math.isclose(topics[1]["tokens"][0]["p"], 0.4, rel_tol=1e-6)


def _snapshot(cluster: str, state_dir: str) -> dict:
    return {"cluster": cluster, "state_dir": state_dir, "status": {"healthy": True},
            "training": {"state": "iterations", "pass": 3, "passes": 10},
            "scores": {"passes": [1, 2, 3], "series": {"perplexity": [9.0, 8.0, 7.5], "seconds": [0.5, 0.25, 0.125],
                                                       "bytes_moved": [1000, 2000, 4096], "kernel_size": [1, 2, None]}},
            "executors": [{"id": 0, "alive": True, "restarts": 1, "documents": 10, "documents_done": 4},
                          {"id": 1, "alive": False, "restarts": 0}],
            "redis": {"nodes": [{"address": "127.0.0.1:7000", "used_memory": 1234567, "keys": 5, "slot_count": 16384},
                                {"address": "127.0.0.1:7001", "error": "refused"}]}}


def test_metrics_parse_as_prometheus_text_with_the_expected_values():
    text = render_metrics([_snapshot('a "quoted" name', "/tmp/x\\y"), {"cluster": "b", "state_dir": "/s",
                                                                       "error": "no cluster.json"}])
    families = {f.name: f for f in text_string_to_metric_families(text)}
    value = {name: {tuple(sorted(s.labels.items())): s.value for s in f.samples} for name, f in families.items()}
    base = (("cluster", 'a "quoted" name'), ("state_dir", "/tmp/x\\y"))

    def key(*extra: tuple[str, str]) -> tuple:
        return tuple(sorted(base + extra))

    assert value["artm_up"] == {base: 1.0, (("cluster", "b"), ("state_dir", "/s")): 0.0}
    assert value["artm_perplexity"] == {base: 7.5}
    assert value["artm_pass_seconds"] == {base: 0.125}
    assert value["artm_pass_bytes"] == {base: 4096.0}
    assert value["artm_training_pass"] == {base: 3.0} and value["artm_training_passes"] == {base: 10.0}
    assert value["artm_score"] == {key(("score", "kernel_size")): 2.0}
    assert value["artm_executors"] == {base: 2.0} and value["artm_executors_alive"] == {base: 1.0}
    assert value["artm_executor_restarts"][key(("executor", "0"))] == 1.0
    assert value["artm_executor_documents_done"] == {key(("executor", "0")): 4.0}
    assert value["artm_redis_memory_bytes"] == {key(("node", "127.0.0.1:7000")): 1234567.0}
    assert value["artm_redis_up"] == {key(("node", "127.0.0.1:7000")): 1.0, key(("node", "127.0.0.1:7001")): 0.0}
    assert all(f.type == "gauge" for f in families.values())
    assert text.endswith("\n") and "nan" not in text.lower()


def test_json_safe_replaces_nan_and_infinities():
    value = {"a": [1.0, float("nan"), float("inf")], "b": ({"c": -float("inf")},), 1: "x"}
    assert json.dumps(json_safe(value), allow_nan=False) == '{"a": [1.0, null, null], "b": [{"c": null}], "1": "x"}'
