"""Training on real local Redis Clusters with real master and executor processes.

Same answer for every topology (and the dense NumPy reference's answer), resuming, initial phi
from a file, no hangs: a killed executor, a killed master, late executors, stale state.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from artm_compose.engine.connect import EXIT_FINAL
from artm_compose.data.batches import list_batches
from artm_compose.data.vocab import read_vocab
from artm_compose.engine.corpus import load_corpus
from artm_compose.engine.dense import dense_fit
from artm_compose.engine.export import export_model, read_model, row_chunks
from artm_compose.engine.initial import random_rows
from artm_compose.engine.protocol import TTL_FRACTION, acks_key, master_key, queue_key, read_progress
from support.ports import requires_redis
from support.engine import DPKG_STATUS, client_of, dpkg_corpus, run_training, start_training
from support.engine import dense_counts

pytestmark = [pytest.mark.integration, requires_redis,
              pytest.mark.skipif(not DPKG_STATUS.exists(), reason="needs /var/lib/dpkg/status for a real corpus")]

TOPICS = 8
SEED = 5
TIMEOUT = 240.0  # bound on any whole training in these tests (slow, shared CI machines)


def train(cluster, corpus_dir, work, nodes, executors_per_node, **config):
    """One training to its end with this module's defaults: (scores, exit codes, training)."""
    config = {"topics": TOPICS, "seed": SEED, "iterations": 4, "inner_iterations": 10, "heartbeat_timeout": 10.0,
              **config}
    return run_training(cluster, corpus_dir, work, nodes, executors_per_node, TIMEOUT, **config)


@pytest.fixture(scope="module")
def corpus_dir(tmp_path_factory) -> Path:
    return dpkg_corpus(tmp_path_factory.mktemp("engine-train") / "dpkg")


def initial_phi(corpus_dir: Path, seed: int, topics: int) -> np.ndarray:
    vocab = read_vocab(corpus_dir / "vocab.txt")
    raw = random_rows(vocab.tokens, vocab.class_ids, seed, topics)
    return raw / raw.sum(axis=0)


def reference_fit(corpus_dir: Path, phi0: np.ndarray, passes: int, inner: int = 10):
    vocab = read_vocab(corpus_dir / "vocab.txt")
    corpus = load_corpus(corpus_dir, vocab, 0, len(list_batches(corpus_dir)))
    counts = np.zeros((corpus.docs.count, len(vocab)))
    counts[:, corpus.rows] = dense_counts(corpus.docs, len(corpus.rows))
    return dense_fit(counts, phi0.astype(np.float32).astype(np.float64), passes, inner)


def test_topologies_give_the_same_answer_as_each_other_and_the_dense_reference(local_cluster, corpus_dir, tmp_path):
    results = {}
    for nodes, per_node in ((1, 1), (2, 1), (4, 2)):
        cluster = local_cluster(nodes=nodes)
        scores, codes, training = train(cluster, corpus_dir, tmp_path / f"{nodes}x{per_node}", nodes, per_node)
        assert set(codes.values()) == {0}, (codes, training.log("master"))
        assert "topic_0: " in training.log("master") and f"topic_{TOPICS - 1}: " in training.log("master")
        record, phi = read_model(client_of(cluster), "test")
        assert record.pass_number == 4 and len(scores["perplexity"]) == 4
        assert len(scores["seconds"]) == 4 and scores["token_weight"] > 20000
        assert all(moved >= minimum > 0 for moved, minimum in zip(scores["bytes_moved"], scores["bytes_minimum"]))
        results[(nodes, per_node)] = (np.array(scores["perplexity"]), phi)
    base_perplexity, base_phi = results[(1, 1)]
    for key, (perplexity, phi) in results.items():
        np.testing.assert_allclose(perplexity, base_perplexity, rtol=1e-4, err_msg=str(key))
        assert np.abs(phi - base_phi).max() < 1e-5, key
    expected_phi, expected_perplexity = reference_fit(corpus_dir, initial_phi(corpus_dir, SEED, TOPICS), 4)
    np.testing.assert_allclose(base_perplexity, expected_perplexity, rtol=1e-5)
    assert np.abs(base_phi - expected_phi).max() < 1e-5
    assert base_perplexity[-1] < 0.6 * base_perplexity[0]


def test_zero_iterations_initialise_continue_resumes_and_init_phi_is_used(local_cluster, corpus_dir, tmp_path):
    cluster = local_cluster(nodes=2)
    client = client_of(cluster)
    scores, codes, training = train(cluster, corpus_dir, tmp_path / "init", 2, 1, iterations=0)
    assert set(codes.values()) == {0}, training.log("master")
    assert scores["perplexity"] == []
    record, phi0 = read_model(client, "test")
    assert record.pass_number == 0
    np.testing.assert_allclose(phi0, initial_phi(corpus_dir, SEED, TOPICS), rtol=2e-7, atol=1e-9)

    # Two passes, then two more with --continue-fitting 1 on another topology: as four in a row.
    first, codes, _ = train(cluster, corpus_dir, tmp_path / "a", 2, 1, iterations=2)
    assert set(codes.values()) == {0}
    second, codes, training = train(cluster, corpus_dir, tmp_path / "b", 2, 1, iterations=2, continue_fitting=True)
    assert set(codes.values()) == {0}, training.log("master")
    assert second["first_pass"] == 3
    record, phi = read_model(client, "test")
    assert record.pass_number == 4
    expected_phi, expected = reference_fit(corpus_dir, phi0, 4)
    np.testing.assert_allclose(first["perplexity"] + second["perplexity"], expected, rtol=1e-5)
    assert np.abs(phi - expected_phi).max() < 1e-5

    # The exported CSV (pandas layout) as --init-phi: the run starts from exactly that phi.
    csv_path = export_model(client, "test", corpus_dir / "vocab.txt", tmp_path / "model.csv")
    assert csv_path.read_text().splitlines()[0] == "token," + ",".join(f"topic_{t}" for t in range(TOPICS))
    third, codes, training = train(cluster, corpus_dir, tmp_path / "c", 2, 1, iterations=2, init_phi=csv_path)
    assert set(codes.values()) == {0}, training.log("master")
    _, expected = reference_fit(corpus_dir, phi, 2)
    np.testing.assert_allclose(third["perplexity"], expected, rtol=1e-5)
    npz = np.load(export_model(client, "test", corpus_dir / "vocab.txt", tmp_path / "model.npz"))
    assert npz["phi"].dtype == np.float32 and npz["phi"].shape == (len(read_vocab(corpus_dir / "vocab.txt")), TOPICS)
    assert list(npz["topics"]) == [f"topic_{t}" for t in range(TOPICS)]
    # A model bigger than one read: exported one block per round trip, the same files come out.
    record, phi = read_model(client, "test")
    layout = record.layout
    assert layout.blocks > 1
    chunks = list(row_chunks(layout, layout.row_bytes))
    assert len(chunks) == layout.blocks and chunks[0][0] == 0 and chunks[-1][1] == layout.vocab_size
    small = np.load(export_model(client, "test", corpus_dir / "vocab.txt", tmp_path / "small.npz",
                                 chunk_bytes=layout.row_bytes))
    assert np.array_equal(small["phi"], phi) and np.array_equal(small["phi"], npz["phi"])
    assert all(np.array_equal(small[k], npz[k], equal_nan=k == "n_t") for k in ("tokens", "class_ids", "topics", "n_t", "pass"))
    small_csv = export_model(client, "test", corpus_dir / "vocab.txt", tmp_path / "small.csv", chunk_bytes=1)
    assert small_csv.read_text() == export_model(client, "test", corpus_dir / "vocab.txt", tmp_path / "m2.csv").read_text()


def test_init_phi_missing_tokens_fail_with_their_names(local_cluster, corpus_dir, tmp_path):
    cluster = local_cluster(nodes=1)
    bad = tmp_path / "bad.csv"
    vocab = read_vocab(corpus_dir / "vocab.txt")
    bad.write_text("token," + ",".join(f"topic_{t}" for t in range(TOPICS)) + "\n"
                   + "".join(f"{token}," + ",".join(["0.1"] * TOPICS) + "\n" for token in vocab.tokens[1:]))
    scores, codes, training = train(cluster, corpus_dir, tmp_path / "w", 1, 2, init_phi=bad)
    assert codes["master"] == 1
    assert f"lacks 1 vocabulary token(s): {vocab.tokens[0]!r}" in training.log("master")
    assert all(code != 0 for name, code in codes.items() if name != "master")


def wait_for(condition, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def test_killed_executor_stops_the_master_within_the_timeout_and_keeps_the_last_pass(local_cluster, corpus_dir,
                                                                                    tmp_path):
    # No restarts allowed: the run stops at once (with restarts, see the test below).
    cluster = local_cluster(nodes=2)
    client = client_of(cluster)
    heartbeat = 5.0
    training = start_training(cluster, corpus_dir, tmp_path, nodes=2, executors_per_node=1, topics=TOPICS, seed=SEED,
                              iterations=100000, heartbeat_timeout=heartbeat, max_restarts=0)
    try:
        wait_for(lambda: read_progress(client, "test").get("pass", 0) >= 3, TIMEOUT, "pass 3")
        victim = training.executors[1]
        os.kill(victim.pid, signal.SIGKILL)
        killed = time.time()
        assert training.wait_master(heartbeat + 10) == 1
        log = training.log("master")
        failing = int(log.split("stopped answering during ")[1].split(" of pass ")[1].split(":")[0])
        assert "executor 1 " in log and f"the model of pass {failing - 1} is kept in Redis" in log, log
        progress = read_progress(client, "test")
        assert progress["state"] == "failed" and "executor 1" in progress["error"]
        noticed = progress["updated"] - killed  # the master records the failure as soon as it notices
        print(f"master noticed the dead executor {noticed:.2f} s after the kill")
        assert noticed <= heartbeat, noticed
        record, phi = read_model(client, "test")
        assert record.pass_number == failing - 1
        assert np.all(np.isfinite(phi)) and np.allclose(phi.sum(axis=0), 1.0, atol=1e-4)
        assert training.executors[0].wait(timeout=heartbeat + 10) == EXIT_FINAL  # told to abort, or saw the master go
    finally:
        training.stop()


def test_a_killed_executor_that_comes_back_heals_the_run_to_the_uninterrupted_answer(local_cluster, corpus_dir,
                                                                                     tmp_path):
    cluster = local_cluster(nodes=2)
    client = client_of(cluster)
    heartbeat = 4.0
    # Enough topics and passes that the kill lands in the middle of the run, not after it.
    common = dict(topics=96, seed=SEED, iterations=30, heartbeat_timeout=heartbeat)
    clean, codes, _ = train(cluster, corpus_dir, tmp_path / "clean", 2, 2, **common)
    assert set(codes.values()) == {0}
    _, clean_phi = read_model(client, "test")
    clean_run = read_progress(client, "test")["run"]

    def this_run_at(number: int) -> bool:
        progress = read_progress(client, "test")
        return progress.get("run") != clean_run and progress.get("pass", 0) >= number

    training = start_training(cluster, corpus_dir, tmp_path / "healed", nodes=2, executors_per_node=2, **common,
                              max_restarts=2, restart_timeout=60.0)
    try:
        wait_for(lambda: this_run_at(3), TIMEOUT, "pass 3 of the second run")
        os.kill(training.executors[2].pid, signal.SIGKILL)
        killed = time.monotonic()
        training.executors[2].wait(timeout=10)
        time.sleep(1.0)  # as a restart policy would: a moment later, the same command line
        training.start_executor(2)
        assert training.wait_master(TIMEOUT) == 0, training.log("master")
        log = training.log("master")
        assert "executor 2 is back" in log and "redoing pass" in log, log
        scores = json.loads(training.scores.read_text())
        assert len(scores["restarts"]) == 1 and scores["restarts"][0]["executor"] == 2
        assert 3 <= scores["restarts"][0]["pass"] < common["iterations"]
        print(f"healed: {scores['restarts'][0]['seconds']:.2f} s from noticing to the redo, "
              f"{time.monotonic() - killed:.1f} s from the kill to the end of the run")
    finally:
        training.stop()
    # The same assignment: the healed run ends with the uninterrupted run's model, bit for bit.
    assert scores["perplexity"] == clean["perplexity"]
    _, healed_phi = read_model(client, "test")
    np.testing.assert_array_equal(healed_phi, clean_phi)


def test_a_second_master_on_a_cluster_is_refused_naming_the_run_that_holds_it(local_cluster, corpus_dir, tmp_path):
    cluster = local_cluster(nodes=1)
    client = client_of(cluster)
    first = start_training(cluster, corpus_dir, tmp_path / "first", nodes=1, executors_per_node=1, topics=TOPICS,
                           seed=SEED, iterations=100000, heartbeat_timeout=4.0)
    try:
        wait_for(lambda: read_progress(client, "test").get("state") == "iterations", TIMEOUT, "the first run to train")
        holder = read_progress(client, "test")["run"]
        second = start_training(cluster, corpus_dir, tmp_path / "second", nodes=1, executors_per_node=1,
                                topics=TOPICS, seed=SEED, iterations=2, heartbeat_timeout=4.0, start_executors=False)
        try:
            assert second.wait_master(30) == 1
            assert f"cluster 'test' already has a master: run {holder}" in second.log("master")
        finally:
            second.stop()
        assert first.master.poll() is None and read_progress(client, "test")["run"] == holder  # undisturbed
        # The lease dies with its holder (kill -9: within its TTL); a master started after a crash takes the cluster.
        first.stop()
        killed = time.monotonic()
        wait_for(lambda: not client.exists(master_key("test")), 4.0, "the killed master's lease to expire")
        expired = time.monotonic() - killed
        print(f"lease of the killed master expired {expired:.2f} s after kill -9 (TTL {4.0 * TTL_FRACTION:g} s)")
        assert expired <= 4.0 * TTL_FRACTION + 0.5
        third, codes, training = train(cluster, corpus_dir, tmp_path / "third", 1, 1, iterations=2,
                                       heartbeat_timeout=4.0)
        assert set(codes.values()) == {0}, training.log("master")
    finally:
        first.stop()


def uninterrupted_then_again(cluster, corpus_dir, tmp_path, executors_per_node, **common):
    """A run to its end on 2 nodes (its scores, phi and run id), then the same run started again."""
    client = client_of(cluster)
    clean, codes, _ = train(cluster, corpus_dir, tmp_path / "clean", 2, executors_per_node, **common)
    assert set(codes.values()) == {0}
    _, clean_phi = read_model(client, "test")
    clean_run = read_progress(client, "test")["run"]
    training = start_training(cluster, corpus_dir, tmp_path / "again", nodes=2, executors_per_node=executors_per_node,
                              **common)
    return clean, clean_phi, clean_run, training


def wait_for_pass(client, number: int, not_run: str) -> None:
    wait_for(lambda: (lambda p: p.get("run") != not_run and p.get("pass", 0) >= number)(read_progress(client, "test")),
             TIMEOUT, f"pass {number} of the second run")


def test_a_restarted_master_resumes_its_run_to_the_uninterrupted_answer(local_cluster, corpus_dir, tmp_path):
    cluster = local_cluster(nodes=2)
    client = client_of(cluster)
    clean, clean_phi, clean_run, training = uninterrupted_then_again(cluster, corpus_dir, tmp_path, 1, topics=96,
                                                                     seed=SEED, iterations=30, heartbeat_timeout=4.0)
    try:
        wait_for_pass(client, 4, clean_run)
        first_run = read_progress(client, "test")["run"]
        os.kill(training.master.pid, signal.SIGKILL)
        training.master.wait(timeout=10)
        training.start_master()  # as a restart policy would: the same command line
        assert training.wait_master(TIMEOUT) == 0, training.log("master")
        assert f"resuming run {first_run}" in training.log("master")
        codes = training.wait_all(TIMEOUT)
        assert set(codes.values()) == {0}, codes
    finally:
        training.stop()
    resumed = json.loads(training.scores.read_text())
    assert resumed["resumed"][0]["run"] == first_run and resumed["first_pass"] == 1
    assert resumed["perplexity"] == clean["perplexity"]  # every pass once, as uninterrupted
    _, phi = read_model(client, "test")
    np.testing.assert_array_equal(phi, clean_phi)


def test_killed_master_makes_executors_exit(local_cluster, corpus_dir, tmp_path):
    # Nobody restarts the master: the executors wait for a new one up to the start-up timeout, then leave.
    cluster = local_cluster(nodes=2)
    client = client_of(cluster)
    heartbeat = 4.0
    training = start_training(cluster, corpus_dir, tmp_path, nodes=2, executors_per_node=1, topics=TOPICS, seed=SEED,
                              iterations=100000, heartbeat_timeout=heartbeat, startup_timeout=3.0)
    try:
        wait_for(lambda: read_progress(client, "test").get("pass", 0) >= 2, TIMEOUT, "pass 2")
        os.kill(training.master.pid, signal.SIGKILL)
        killed = time.monotonic()
        for executor, process in training.executors.items():
            assert process.wait(timeout=heartbeat + 10) == EXIT_FINAL
            assert "master of run" in training.log(f"executor-{executor}")
            assert "no master appeared" in training.log(f"executor-{executor}")
        assert time.monotonic() - killed <= heartbeat + 3.0 + 3.0
    finally:
        training.stop()


def test_master_waits_for_late_executors_and_gives_up_naming_the_missing(local_cluster, corpus_dir, tmp_path):
    cluster = local_cluster(nodes=1)
    late = start_training(cluster, corpus_dir, tmp_path / "late", nodes=1, executors_per_node=2, topics=TOPICS,
                          seed=SEED, iterations=2, heartbeat_timeout=10.0, start_executors=False)
    try:
        time.sleep(3.0)  # the master alone: it must wait, not abort
        assert late.master.poll() is None
        late.start_executors()
        codes = late.wait_all(TIMEOUT)
        assert set(codes.values()) == {0}, late.log("master")
    finally:
        late.stop()
    lonely = start_training(cluster, corpus_dir, tmp_path / "lonely", nodes=1, executors_per_node=2, topics=TOPICS,
                            seed=SEED, iterations=2, heartbeat_timeout=10.0, start_executors=False,
                            startup_timeout=3.0)
    try:
        assert lonely.wait_master(30) == 1
        assert "executor(s) 0, 1 did not register" in lonely.log("master")
    finally:
        lonely.stop()


def test_state_left_by_a_crashed_run_does_not_end_a_new_run(local_cluster, corpus_dir, tmp_path):
    cluster = local_cluster(nodes=2)
    client = client_of(cluster)
    clean, codes, _ = train(cluster, corpus_dir, tmp_path / "clean", 2, 1, iterations=3)
    assert set(codes.values()) == {0}
    clean_run = read_progress(client, "test")["run"]
    # A run crashes hard (everything killed) in the middle: its keys stay behind.
    crashed = start_training(cluster, corpus_dir, tmp_path / "crash", nodes=2, executors_per_node=1, topics=TOPICS,
                             seed=SEED, iterations=100000, heartbeat_timeout=30.0)
    try:
        wait_for(lambda: (lambda p: p["run"] != clean_run and p.get("pass", 0) >= 2)(read_progress(client, "test")),
                 TIMEOUT, "pass 2 of the crashing run")
    finally:
        crashed.stop()
    old_run = json.loads(client.get(master_key("test")))["run"]
    # Worse than a crash: someone left termination commands and replies of that run around.
    for executor in (0, 1):
        client.rpush(queue_key("test", old_run, executor), json.dumps({"op": "terminate", "run": old_run, "seq": 99}))
        client.rpush(acks_key("test", old_run), json.dumps({"executor": executor, "run": old_run, "seq": 3}))
    assert client.exists(master_key("test"))  # the dead master's key has not even expired yet
    again, codes, training = train(cluster, corpus_dir, tmp_path / "again", 2, 1, iterations=3)
    assert set(codes.values()) == {0}, training.log("master")
    assert len(again["perplexity"]) == 3
    np.testing.assert_allclose(again["perplexity"], clean["perplexity"], rtol=1e-6)
    progress = read_progress(client, "test")
    assert progress["state"] == "done" and progress["run"] != old_run and progress["pass"] == 3


def test_a_run_whose_redis_lost_its_data_goes_on_from_its_checkpoint(local_cluster, corpus_dir, tmp_path):
    from artm_compose.engine.checkpoint import read_checkpoint

    cluster = local_cluster(nodes=2)
    client = client_of(cluster)
    # Long enough that the loss lands mid-run: a run that ends removes its checkpoint.
    common = dict(topics=96, seed=SEED, iterations=60, heartbeat_timeout=4.0, checkpoint_every=4)
    clean, codes, _ = train(cluster, corpus_dir, tmp_path / "clean", 2, 1, **common)
    assert set(codes.values()) == {0}
    assert [c["pass"] for c in clean["checkpoints"]] == list(range(4, 60, 4))  # not the last: Redis holds the result
    _, clean_phi = read_model(client, "test")
    work = tmp_path / "lost"
    training = start_training(cluster, corpus_dir, work, nodes=2, executors_per_node=1, **common)
    try:
        checkpoint = work / "checkpoint.npz"
        wait_for(lambda: checkpoint.exists() and read_checkpoint(checkpoint).pass_number >= 4, TIMEOUT,
                 "a checkpoint of pass 4 or later")
        training.stop()  # everything at once: the processes, then every node's data
        saved = read_checkpoint(checkpoint)
        client.flushall()
        assert client.dbsize() == 0
        training.start_executors()
        training.start_master()
        codes = training.wait_all(TIMEOUT)
        assert set(codes.values()) == {0}, training.log("master")
    finally:
        training.stop()
    assert (f"going on with run {saved.run} from its checkpoint of pass {saved.pass_number}"
            in training.log("master"))
    restored = json.loads(training.scores.read_text())
    assert restored["resumed"] == [{"run": saved.run, "pass": saved.pass_number, "from": "checkpoint"}]
    assert restored["perplexity"] == clean["perplexity"]  # every pass once, bit for bit as uninterrupted
    _, phi = read_model(client, "test")
    np.testing.assert_array_equal(phi, clean_phi)
    assert not (work / "checkpoint.npz").exists()  # the run is over: a later loss must not take it up again
    # A new run in the same place starts afresh.
    again, codes, training = train(cluster, corpus_dir, work, 2, 1, **{**common, "iterations": 2})
    assert set(codes.values()) == {0} and again["first_pass"] == 1 and not again["resumed"]
    assert not (work / "checkpoint.npz").exists()


def test_scaling_from_4_to_2_executors_and_back_mid_run_ends_as_an_uninterrupted_run(local_cluster, corpus_dir,
                                                                                    tmp_path):
    from artm_compose.engine.protocol import request_scale
    from support.engine import executor_argvs, training_plan

    cluster = local_cluster(nodes=2)
    client = client_of(cluster)
    common = dict(topics=96, seed=SEED, iterations=12, heartbeat_timeout=4.0)
    clean, clean_phi, clean_run, training = uninterrupted_then_again(cluster, corpus_dir, tmp_path, 2, **common)
    try:
        for after, per_node in ((3, 1), (7, 2)):  # 4 -> 2 after pass 3, 2 -> 4 after pass 7
            wait_for_pass(client, after, clean_run)
            request = request_scale(client, "test", 2 * per_node)
            wait_for(lambda: read_progress(client, "test").get("scale_request") == request, TIMEOUT,
                     f"the master to take the request for {2 * per_node} executors")
            # What the runtime does: the ended executors' places taken by the new plan's.
            assert all(process.wait(timeout=60) == 0 for process in training.executors.values())
            plan = training_plan(cluster, corpus_dir, nodes=2, executors_per_node=per_node, **common)
            training.executors, training.executor_argvs = {}, executor_argvs(cluster, plan, corpus_dir)
            training.start_executors()
        codes = training.wait_all(TIMEOUT)
        assert set(codes.values()) == {0}, training.log("master")
    finally:
        training.stop()
    scaled = json.loads(training.scores.read_text())
    assert [(r["from"], r["to"]) for r in scaled["rescaled"]] == [(4, 2), (2, 4)]
    assert 3 <= scaled["rescaled"][0]["pass"] < scaled["rescaled"][1]["pass"] < 12
    # Other executors sum the contributions in another order: float rounding, nothing more.
    np.testing.assert_allclose(scaled["perplexity"], clean["perplexity"], rtol=1e-6)
    _, phi = read_model(client, "test")
    np.testing.assert_allclose(phi, clean_phi, rtol=1e-3, atol=1e-7)


# Long enough for the kills to land mid-run; an executor gone for 2 s is taken over.
TAKE_OVER_RUN = dict(topics=96, seed=SEED, iterations=60, heartbeat_timeout=3.0, restart_timeout=2.0)


def test_an_executor_that_never_comes_back_has_its_share_taken_over_also_for_a_restarted_master(
        local_cluster, corpus_dir, tmp_path):
    cluster = local_cluster(nodes=2)
    client = client_of(cluster)
    common = TAKE_OVER_RUN
    clean, _, clean_run, training = uninterrupted_then_again(cluster, corpus_dir, tmp_path, 2, **common)
    try:
        wait_for_pass(client, 3, clean_run)
        victim = training.executors[2]
        victim.send_signal(signal.SIGSTOP)  # longer than --restart-timeout: as good as gone
        try:
            taken = wait_for(lambda: json.loads(training.scores.read_text())["taken_over"], TIMEOUT, "the take-over")
        finally:
            victim.send_signal(signal.SIGCONT)
        # Going on after all, it writes nothing of the command it was stopped in (heartbeat lapsed) and ends.
        assert victim.wait(timeout=30) == 0, training.log("executor-2")
        assert "executor 2: terminated by the master" in training.log("executor-2")
        print("the taken-over executor, continued:", [line for line in training.log("executor-2").splitlines()
                                                     if "lapsed" in line] or "idle when stopped")
        # A pass committed on the new assignment, then the master dies: its restart (same command line,
        # --num-executors 4) goes on with executors 0, 1 and 3, not waiting for executor 2.
        wait_for_pass(client, taken[0]["pass"] + 1, clean_run)
        assert training.master.poll() is None, "the run ended before the master could be killed"
        os.kill(training.master.pid, signal.SIGKILL)
        training.master.wait(timeout=10)
        training.start_master()
        codes = training.wait_all(TIMEOUT)
        assert codes.pop("master") == 0, training.log("master")
        assert set(codes.values()) == {0}, codes
    finally:
        training.stop()
    taken = json.loads(training.scores.read_text())
    assert [(t["executor"], t["by"]) for t in taken["taken_over"]] == [(2, 1)]
    assert taken["taken_over"][0]["batch_range"][1] == training.plan.executors[2].batch_range[1]
    assert "executor 1 takes over its batches" in training.log("master")
    assert len(taken["resumed"]) == 1 and "waiting for 3 executor(s) in cluster 'test' (0, 1, 3:" in training.log("master")
    np.testing.assert_allclose(taken["perplexity"], clean["perplexity"], rtol=1e-6)


def kill(process) -> None:
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=10)


def assert_taken_over_as_uninterrupted(client, scores, clean, clean_phi) -> None:
    """The model of a run with take-overs is the uninterrupted run's up to float rounding: the heirs sum their
    shares' contributions in another order (phi: 8.6e-8 at most seen)."""
    np.testing.assert_allclose(scores["perplexity"], clean["perplexity"], rtol=1e-6)
    _, phi = read_model(client, "test")
    print("largest phi difference to the uninterrupted run:", np.abs(phi - clean_phi).max())
    np.testing.assert_allclose(phi, clean_phi, rtol=1e-6, atol=5e-7)


def test_a_master_restarted_while_an_executor_is_gone_takes_its_share_over(local_cluster, corpus_dir, tmp_path):
    cluster = local_cluster(nodes=2)
    client = client_of(cluster)
    common = TAKE_OVER_RUN
    clean, clean_phi, clean_run, training = uninterrupted_then_again(cluster, corpus_dir, tmp_path, 2, **common)
    try:
        # The master and executor 2 die together: the record lists executor 2, which never comes back.
        wait_for_pass(client, 3, clean_run)
        kill(training.executors[2])
        kill(training.master)
        training.start_master()
        taken = wait_for(lambda: json.loads(training.scores.read_text())["taken_over"], TIMEOUT, "the take-over of 2")
        # Executor 3 dies, and the master dies while it waits for it to come back (before its take-over).
        wait_for_pass(client, taken[0]["pass"] + 1, clean_run)
        kill(training.executors[3])
        wait_for(lambda: read_progress(client, "test").get("executor") == 3, TIMEOUT, "the recovery of executor 3")
        assert training.master.poll() is None, "the run ended before the master could be killed"
        kill(training.master)
        training.start_master()
        codes = training.wait_all(TIMEOUT)
        assert codes.pop("master") == 0, training.log("master")
        assert codes == {"executor-0": 0, "executor-1": 0, "executor-2": -9, "executor-3": -9}, codes
    finally:
        training.stop()
    healed = json.loads(training.scores.read_text())
    assert [(t["executor"], t["by"]) for t in healed["taken_over"]] == [(2, 1), (3, 1)], training.log("master")
    assert healed["executors"] == 2 and len(healed["resumed"]) == 2
    assert training.log("master").count("not waiting for it") == 2
    assert_taken_over_as_uninterrupted(client, healed, clean, clean_phi)


def test_a_checkpoint_after_a_take_over_is_restored_with_the_executors_left(local_cluster, corpus_dir, tmp_path):
    from artm_compose.engine.checkpoint import read_checkpoint

    cluster = local_cluster(nodes=2)
    client = client_of(cluster)
    common = {**TAKE_OVER_RUN, "checkpoint_every": 2}
    clean, clean_phi, clean_run, training = uninterrupted_then_again(cluster, corpus_dir, tmp_path, 2, **common)
    checkpoint = tmp_path / "again" / "checkpoint.npz"
    try:
        wait_for_pass(client, 3, clean_run)
        kill(training.executors[2])
        taken = wait_for(lambda: json.loads(training.scores.read_text())["taken_over"], TIMEOUT, "the take-over of 2")
        wait_for(lambda: checkpoint.exists() and read_checkpoint(checkpoint).pass_number > taken[0]["pass"], TIMEOUT,
                 "a checkpoint after the take-over")
        training.stop()  # everything, then every node's data
        saved = read_checkpoint(checkpoint)
        assert saved.executors is not None and sorted(saved.executors) == [0, 1, 3]
        assert saved.scores["executors"] == 3
        client.flushall()
        for executor in (0, 1, 3):  # executor 2 stays gone
            training.start_executor(executor)
        training.start_master()
        assert training.wait_master(TIMEOUT) == 0, training.log("master")
        codes = training.wait_all(TIMEOUT)
        assert codes["executor-2"] == -9 and {codes[f"executor-{e}"] for e in (0, 1, 3)} == {0}, codes
    finally:
        training.stop()
    assert f"going on with run {saved.run} from its checkpoint of pass {saved.pass_number}" in training.log("master")
    assert "waiting for 3 executor(s) in cluster 'test' (0, 1, 3:" in training.log("master")
    restored = json.loads(training.scores.read_text())
    assert restored["executors"] == 3 and [(t["executor"], t["by"]) for t in restored["taken_over"]] == [(2, 1)]
    assert_taken_over_as_uninterrupted(client, restored, clean, clean_phi)


def test_an_executor_stopped_past_its_heartbeat_is_taken_back_when_it_goes_on(local_cluster, corpus_dir, tmp_path):
    cluster = local_cluster(nodes=2)
    client = client_of(cluster)
    restart_timeout = 60.0
    common = dict(topics=96, seed=SEED, iterations=60, heartbeat_timeout=3.0, restart_timeout=restart_timeout)
    clean, clean_phi, clean_run, training = uninterrupted_then_again(cluster, corpus_dir, tmp_path, 2, **common)
    victim = training.executors[2]
    try:
        wait_for_pass(client, 3, clean_run)
        victim.send_signal(signal.SIGSTOP)  # starved (or stopped) past its heartbeat timeout, then going on
        try:
            wait_for(lambda: read_progress(client, "test").get("state") == "recovery", TIMEOUT,
                     "the master to miss the stopped executor 2")
            time.sleep(1.0)
        finally:
            victim.send_signal(signal.SIGCONT)
        codes = training.wait_all(TIMEOUT)
        assert set(codes.values()) == {0}, training.log("master")
    finally:
        training.stop()
    healed = json.loads(training.scores.read_text())
    assert [(r["executor"], r["pid"]) for r in healed["restarts"]] == [(2, victim.pid)], training.log("master")
    assert healed["restarts"][0]["seconds"] < restart_timeout / 3 and healed["taken_over"] == []
    # Its work of the interrupted pass was redone, replacing what it wrote after it went on: bit for bit.
    assert healed["perplexity"] == clean["perplexity"]
    _, phi = read_model(client, "test")
    np.testing.assert_array_equal(phi, clean_phi)


def test_a_master_restarted_after_a_scale_resumes_with_the_scaled_executors(local_cluster, corpus_dir, tmp_path):
    from artm_compose.engine.protocol import request_scale
    from support.engine import executor_argvs, training_plan

    cluster = local_cluster(nodes=2)
    client = client_of(cluster)
    common = dict(topics=96, seed=SEED, iterations=14, heartbeat_timeout=4.0)
    clean, _, clean_run, training = uninterrupted_then_again(cluster, corpus_dir, tmp_path, 2, **common)
    try:
        wait_for_pass(client, 3, clean_run)
        request = request_scale(client, "test", 2)
        wait_for(lambda: read_progress(client, "test").get("scale_request") == request, TIMEOUT, "the scale request")
        assert all(process.wait(timeout=60) == 0 for process in training.executors.values())
        plan = training_plan(cluster, corpus_dir, nodes=2, executors_per_node=1, **common)
        training.executors, training.executor_argvs = {}, executor_argvs(cluster, plan, corpus_dir)
        training.start_executors()
        wait_for(lambda: read_progress(client, "test").get("pass", 0) >= 7, TIMEOUT, "pass 7 on 2 executors")
        os.kill(training.master.pid, signal.SIGKILL)
        training.master.wait(timeout=10)
        training.start_master()  # its first command line: --num-executors 4
        codes = training.wait_all(TIMEOUT)
        assert set(codes.values()) == {0}, training.log("master")
    finally:
        training.stop()
    scaled = json.loads(training.scores.read_text())
    assert scaled["executors"] == 2 and len(scaled["resumed"]) == 1
    np.testing.assert_allclose(scaled["perplexity"], clean["perplexity"], rtol=1e-6)


def test_a_heartbeat_counts_the_beats_that_come_after_its_key_expired(local_cluster):
    from artm_compose.engine.protocol import Heartbeat

    cluster = local_cluster(nodes=1)
    client = client_of(cluster)
    key = "ac:test:hb:9"
    heartbeat = Heartbeat(client, key, 1.0, lambda: {"instance": "i"})
    heartbeat.beat()
    heartbeat.beat()
    assert heartbeat.lapses == 0
    wait_for(lambda: not client.exists(key), 5.0, f"{key} to expire (TTL {TTL_FRACTION:g} s)")
    heartbeat.beat()
    assert heartbeat.lapses == 1 and client.exists(key)
    heartbeat.beat()
    assert heartbeat.lapses == 1
    client.delete(key)


def test_an_executor_that_loses_its_master_leaves_the_queued_commands_for_its_next_attach(local_cluster):
    # A master's lease can lapse while a Redis failover takes its key's node (the master goes on with its run);
    # the prepare it queued meanwhile must survive the executor's "master gone" to be taken when it attaches again.
    from artm_compose.engine.protocol import ExecutorChannel, MasterGone

    cluster = local_cluster(nodes=1)
    client = client_of(cluster)
    channel = ExecutorChannel(client=client, cluster="test", executor=0, run="r1", started=True)
    prepare = json.dumps({"op": "prepare", "run": "r1", "seq": 7})
    client.rpush(queue_key("test", "r1", 0), prepare)
    with pytest.raises(MasterGone, match="the master of run r1 is gone"):
        channel.next_command(time.monotonic() + 5, tick=lambda: None, attached=lambda: None)
    assert client.lrange(queue_key("test", "r1", 0), 0, -1) == [prepare.encode()]
    client.set(master_key("test"), json.dumps({"run": "r1"}))
    again = ExecutorChannel(client=client, cluster="test", executor=0)
    assert again.next_command(time.monotonic() + 5, tick=lambda: None, attached=lambda: None)["seq"] == 7


def test_an_executor_keeps_its_run_while_its_master_lease_is_missing_for_less_than_its_patience(local_cluster):
    # A Redis failover can take the lease's node for longer than the lease lives; the master sets it again once
    # the replica serves. Leaving the run then made the master wait for a new instance that never came.
    from artm_compose.engine.protocol import ExecutorChannel, MasterGone

    cluster = local_cluster(nodes=1)
    client = client_of(cluster)
    channel = ExecutorChannel(client=client, cluster="test", executor=0, run="r1", started=True, patience=5.0)
    command = json.dumps({"op": "e-step", "run": "r1", "seq": 8})

    def master_back() -> None:
        client.set(master_key("test"), json.dumps({"run": "r1"}))
        client.rpush(queue_key("test", "r1", 0), command)

    back = threading.Timer(1.5, master_back)  # missing for a BLPOP round or more, less than the patience
    back.start()
    try:
        assert channel.next_command(time.monotonic() + 10, tick=lambda: None, attached=lambda: None)["seq"] == 8
    finally:
        back.cancel()
    client.delete(master_key("test"))
    impatient = ExecutorChannel(client=client, cluster="test", executor=0, run="r1", started=True, patience=0.5)
    with pytest.raises(MasterGone, match="the master of run r1 is gone"):
        impatient.next_command(time.monotonic() + 10, tick=lambda: None, attached=lambda: None)
