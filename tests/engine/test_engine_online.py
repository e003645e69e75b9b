"""Online EM (``mode: online``): the schedule, the refusals, and BigARTM 0.9.2's ``fit_online`` from the
same initial phi with the same update_every, tau0, kappa and batch order."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest

from artm_compose.config import ClusterConfig
from artm_compose.data.batches import list_batches, make_batch, write_batch
from artm_compose.data.vocab import make_vocab
from artm_compose.engine.corpus import load_corpus
from artm_compose.engine.export import export_model
from artm_compose.engine.launch import master_argv
from artm_compose.engine.online import (OnlineSchedule, blend, check_online, rho, update_batches, update_documents,
                                        updates_in_pass)
from artm_compose.errors import ConfigError
from artm_compose.plan import make_plan
from artm_compose.runtimes.local.runtime import LOOPBACK
from support.engine import DPKG_STATUS, client_of, dpkg_corpus, run_training
from support.paths import REFERENCE_PYTHON, REFERENCE_SCRIPT
from support.ports import requires_redis

TOPICS = 8


@pytest.mark.parametrize("values,named", [
    (dict(mode="batch"), "mode='batch'"), (dict(update_every=0), "update_every=0"),
    (dict(update_every=1.5), "update_every=1.5"), (dict(tau0=-1.0), "tau0=-1.0"),
    (dict(kappa=float("nan")), "kappa=nan"), (dict(kappa="fast"), "kappa='fast'")])
def test_bad_online_values_are_refused_by_name(values, named):
    with pytest.raises(ConfigError, match=named.replace("(", r"\(").replace(".", r"\.")):
        ClusterConfig(**values)


def test_schedule_counts_updates_over_passes_as_fit_online_does():
    assert updates_in_pass([5, 4, 0], 2) == 3 and updates_in_pass([], 2) == 0
    assert [update_batches(u, 2, 5) for u in range(4)] == [(0, 2), (2, 4), (4, 5), (5, 5)]
    schedule = OnlineSchedule(update_every=2, tau0=10.0, kappa=0.5)
    first, second = schedule.next_pass([5, 3]), schedule.next_pass([5, 3])
    assert [u.count for u in first + second] == [1, 2, 3, 4, 5, 6]
    assert second[0].apply_weight == pytest.approx(14.0 ** -0.5) == rho(10.0, 0.5, 4)
    assert second[0].aggregate_fields() == {"apply": pytest.approx(14 ** -0.5), "decay": pytest.approx(1 - 14 ** -0.5)}
    assert second[2].e_step_fields() == {"update": 2, "update_every": 2}
    assert schedule.summary["updates_per_pass"] == [3, 3]
    np.testing.assert_allclose(blend(np.ones(2), np.full(2, 3.0), 0.75, 0.25), [1.5, 1.5])
    check_online("offline", 1, 1024.0, 0.7)  # the defaults pass


def test_update_documents_are_the_batches_of_the_update_on_the_rows_they_use(tmp_path):
    vocab = make_vocab(["a", "b", "c", "d"])
    (tmp_path / "vocab.txt").write_text("\n".join(vocab.tokens) + "\n")
    for number, docs in enumerate([[(1, "x", [0, 1], [1.0, 2.0])], [(2, "y", [2], [3.0]), (3, "z", [3, 2], [1.0, 1.0])],
                                   [(4, "w", [1], [5.0])]]):
        batch = make_batch(f"b{number}", ["a", "b", "c", "d"], [(i, t, np.array(r), np.array(w)) for i, t, r, w in docs])
        write_batch(tmp_path / f"{number:03d}.batch", batch)
    corpus = load_corpus(tmp_path, vocab, 0, 3)
    assert corpus.batch_starts.tolist() == [0, 1, 3, 4] and corpus.item_ids.tolist() == [1, 2, 3, 4]
    docs, used = update_documents(corpus, 1, 1)  # the second batch: documents 2 and 3, tokens c and d
    assert corpus.rows[used].tolist() == [2, 3]
    assert docs.indptr.tolist() == [0, 1, 3] and corpus.rows[used][docs.rows].tolist() == [2, 3, 2]
    assert docs.weights.tolist() == [3.0, 1.0, 1.0]
    docs, used = update_documents(corpus, 1, 2)  # past the end of a short last update: the third batch
    assert docs.count == 1 and corpus.rows[used].tolist() == [1]


def test_master_gets_online_flags_only_in_online_mode(tmp_path):
    corpus = dpkg_corpus(tmp_path / "dpkg") if DPKG_STATUS.exists() else pytest.skip("no dpkg status")
    plan = make_plan(ClusterConfig(runtime="local", data_dir=corpus, mode="online", update_every=3, tau0=64, kappa=0.6),
                     addressing=LOOPBACK)
    argv = master_argv(plan, redis_host="h", redis_port=1, password_file="p", batches_dir="b", vocab_path="v",
                       scores_path="s", checkpoint_path="c.npz")
    assert argv[argv.index("--mode") + 1] == "online" and argv[argv.index("--update-every") + 1] == "3"
    assert float(argv[argv.index("--tau0") + 1]) == 64.0 and float(argv[argv.index("--kappa") + 1]) == 0.6
    offline = make_plan(ClusterConfig(runtime="local", data_dir=corpus), addressing=LOOPBACK)
    assert "--mode" not in master_argv(offline, redis_host="h", redis_port=1, password_file="p", batches_dir="b",
                                       vocab_path="v", scores_path="s", checkpoint_path="c.npz")


def bigartm_online(batches: Path, phi: Path, out: Path, passes: int, update_every: int, tau0: float, kappa: float,
                   groups: list[list[str]] | None) -> dict:
    argv = [str(REFERENCE_PYTHON), str(REFERENCE_SCRIPT), "fit-online", "--batches", str(batches), "--phi", str(phi),
            "--passes", str(passes), "--update-every", str(update_every), "--tau0", str(tau0), "--kappa", str(kappa),
            "--json", str(out)]
    if groups is not None:
        argv += ["--groups", json.dumps(groups)]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    return json.loads(out.read_text())


def update_groups(names: list[str], ranges: list[tuple[int, int]], update_every: int) -> list[list[str]]:
    """The batches of each update as our executors take them: the k-th group of every executor, in id order."""
    groups = []
    for update in range(updates_in_pass([end - begin for begin, end in ranges], update_every)):
        groups.append([names[begin + i] for begin, end in ranges
                       for i in range(*update_batches(update, update_every, end - begin))])
    return groups


@pytest.mark.integration
@pytest.mark.reference
@requires_redis
@pytest.mark.skipif(not REFERENCE_PYTHON.exists(), reason="no .venv-ref (scripts/setup_reference.sh)")
@pytest.mark.skipif(not DPKG_STATUS.exists(), reason="needs /var/lib/dpkg/status for a real corpus")
@pytest.mark.parametrize("nodes,per_node,update_every,tau0,kappa", [(1, 1, 1, 1024.0, 0.7), (2, 2, 2, 16.0, 0.55)])
def test_online_perplexity_per_pass_matches_fit_online(local_cluster, tmp_path, nodes, per_node, update_every,
                                                       tau0, kappa):
    corpus = dpkg_corpus(tmp_path / "dpkg")
    cluster = local_cluster(nodes=nodes)
    common = {"topics": TOPICS, "seed": 2, "heartbeat_timeout": 10.0}
    _, codes, _ = run_training(cluster, corpus, tmp_path / "init", nodes, per_node, 240, iterations=0, **common)
    assert set(codes.values()) == {0}
    init_phi = export_model(client_of(cluster), "test", corpus / "vocab.txt", tmp_path / "init.npz")

    online = dict(mode="online", update_every=update_every, tau0=tau0, kappa=kappa)
    scores, codes, training = run_training(cluster, corpus, tmp_path / "ours", nodes, per_node, 240, iterations=3,
                                           init_phi=init_phi, **common, **online)
    assert set(codes.values()) == {0}, training.log("master")
    names = [path.name for path in list_batches(corpus)]
    ranges = [tuple(e.batch_range) for e in training.plan.executors]
    # One executor: BigARTM's own schedule (update_every batches in file order); several: explicit updates.
    groups = None if len(ranges) == 1 else update_groups(names, ranges, update_every)
    reference = bigartm_online(corpus, init_phi, tmp_path / "bigartm.json", 3, update_every, tau0, kappa, groups)

    np.testing.assert_allclose(scores["perplexity"], reference["perplexity"], rtol=1e-3)
    ours = [u["perplexity"] for u in scores["online"]["updates"]]
    assert len(ours) == len(reference["updates"]) == 3 * (len(groups) if groups else len(names) // update_every)
    np.testing.assert_allclose(ours, [u["value"] for u in reference["updates"]], rtol=1e-3)
    assert scores["perplexity"][-1] < 0.8 * scores["perplexity"][0]  # it learns within and across passes


@pytest.mark.integration
@requires_redis
@pytest.mark.skipif(not DPKG_STATUS.exists(), reason="needs /var/lib/dpkg/status for a real corpus")
def test_up_in_online_mode_on_the_local_runtime(local_cluster, tmp_path):
    corpus = dpkg_corpus(tmp_path / "dpkg")
    cluster = local_cluster(nodes=1, up=False, name="online", data_dir=corpus, executors_per_node=2, topics=4,
                            iterations=2, mode="online", update_every=3, tau0=8, kappa=0.5)
    assert cluster.up(detach=False, echo=lambda _line: None).training == "finished"
    scores = json.loads(cluster.state.scores.read_text())
    counts = [e.batch_range[1] - e.batch_range[0] for e in cluster.plan.executors]
    assert scores["online"]["updates_per_pass"] == [updates_in_pass(counts, 3)] * 2
    assert [u["count"] for u in scores["online"]["updates"]] == list(range(1, 2 * updates_in_pass(counts, 3) + 1))
    assert scores["online"]["updates"][0]["rho"] == pytest.approx(9 ** -0.5)
    assert len(scores["perplexity"]) == 2 and scores["perplexity"][1] < scores["perplexity"][0]
