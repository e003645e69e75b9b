"""The executor program: E-step over its batches, normalisation of its token range.

Accepts the reference executor's flags (SYSTEM.md section 2) with the same names and meaning,
plus ours. ``--caching-mode`` is accepted for compatibility and ignored: this engine always
moves the phi rows it needs once per pass (one pipelined read) and its n_wt increments once per
pass (one pipelined write), and keeps its own token range in memory.

Exit status: 0 after the master's termination command, 1 on any failure (bad data, lost master,
run aborted), with a one-line reason on stderr.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from redis.cluster import RedisCluster

from artm_compose.data.vocab import Vocabulary, read_vocab
from artm_compose.engine import model_store as store
from artm_compose.engine.connect import EXIT_FINAL, add_connection_flags, check_timeouts, connect, run_or_exit
from artm_compose.engine.corpus import LocalCorpus, load_corpus
from artm_compose.engine.failover import REDIS_ERRORS, describe_redis_error, wait_for_cluster
from artm_compose.engine.initial import phi_rows_for, random_rows
from artm_compose.engine.chunks import row_blocks
from artm_compose.engine.kernel import Modalities, e_step, normalise_rows, warm_up
from artm_compose.engine.layout import Layout, prepare_slot_tags
from artm_compose.engine.online import blend, update_documents
from artm_compose.engine.protocol import (ExecutorChannel, ExecutorStatus, Heartbeat, MasterGone, NoMaster,
                                          RunAborted, TTL_FRACTION, heartbeat_key)
from artm_compose.engine.model_inputs import e_step_inputs
from artm_compose.engine.regularizers import (Regularizer, check_against_model, combine_terms, make_regularizer,
                                              phi_terms, relative_regularizers, relative_sums)
from artm_compose.engine.scores import SCORE_CLASS, class_positive_sums, phi_partials
from artm_compose.errors import ArtmComposeError, ConfigError, TrainingError


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="artm-compose-executor", description=__doc__.splitlines()[0])
    parser.add_argument("--num-topics", type=int, required=True)
    parser.add_argument("--num-inner-iter", type=int, default=10)
    parser.add_argument("--num-threads", type=int, default=1)
    parser.add_argument("--batches-dir-path", type=Path, required=True)
    parser.add_argument("--vocab-path", type=Path, required=True)
    parser.add_argument("--continue-fitting", type=int, choices=(0, 1), default=0)
    parser.add_argument("--caching-mode", choices=("none", "pwt", "nwt", "all"), default="none",
                        help="accepted for compatibility; rows always move once per pass")
    parser.add_argument("--executor-id", type=int, required=True)
    parser.add_argument("--token-begin-index", type=int, required=True)
    parser.add_argument("--token-end-index", type=int, required=True)
    parser.add_argument("--batch-begin-index", type=int, required=True)
    parser.add_argument("--batch-end-index", type=int, required=True)
    parser.add_argument("--init-phi", type=Path, help="initial phi (.npz export or CSV of get_phi())")
    parser.add_argument("--seed", type=int, help="must match the master's seed when given")
    add_connection_flags(parser)
    args = parser.parse_args(argv)
    check_timeouts(parser, args)
    for name in ("num_topics", "num_inner_iter", "num_threads"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')}={getattr(args, name)} must be >= 1")
    for kind in ("token", "batch"):
        begin, end = getattr(args, f"{kind}_begin_index"), getattr(args, f"{kind}_end_index")
        if not 0 <= begin <= end:
            parser.error(f"--{kind}-begin-index={begin} --{kind}-end-index={end} is not a range")
    return args


@dataclass
class OwnRows:
    """The token range this executor owns and what it holds about it between phases."""

    begin: int
    end: int
    phi: np.ndarray | None = None  # float32, committed phi of the range
    nwt: np.ndarray | None = None  # float64, summed counters (or random values) awaiting n_t


class HeartbeatLapsed(TrainingError):
    """The executor's heartbeat lapsed while it worked on a command: its results are not written."""


_SOURCES = {"random": "seeded random rows", "file": "a phi file", "continue": "the model in Redis"}


class Executor:
    """Handles the master's commands; all model state of the executor lives here."""

    def __init__(self, args: argparse.Namespace, client: RedisCluster, vocab: Vocabulary, corpus: LocalCorpus,
                 status: ExecutorStatus, heartbeat: Heartbeat):
        self.args = args
        self.client = client
        self.vocab = vocab
        self.corpus = corpus
        self.batch_range = (args.batch_begin_index, args.batch_end_index)  # the batches of ``corpus``
        self.token_weights = corpus.docs.weights  # as read; prepare applies the run's class weights
        self.status = status
        self.heartbeat = heartbeat
        self.take_ranges((args.token_begin_index, args.token_end_index), self.batch_range)
        self.layout: Layout | None = None
        self.own_increments: np.ndarray | None = None  # float32 n_wt of own rows touched this pass
        self.online_nwt: np.ndarray | None = None  # online mode: the blended n_wt of the own range
        # Set by prepare from the master's command: classes, their weights, regularizers.
        self.classes: list[str] = []
        self.modalities = Modalities()
        self.regularizers: list[Regularizer] = []
        self.topic_names: list[str] = []
        self.own_slots = np.zeros(0, dtype=np.int64)  # class slot of each own row
        self.pending_terms: list = []  # phi regularizer terms awaiting the master's gamma coefficients
        self.lapses = heartbeat.lapses  # the heartbeat's lapses before the current command was taken

    def take_ranges(self, token_range: tuple[int, int], batch_range: tuple[int, int]) -> None:
        """Own ``token_range`` and E-step the batches of ``batch_range`` (loaded here unless they are the
        loaded ones) from now on: the start flags', or those the master assigns (after a take-over)."""
        if token_range[1] > len(self.vocab):
            raise TrainingError(f"token range [{token_range[0]}, {token_range[1]}) exceeds the vocabulary "
                                f"{self.args.vocab_path} of {len(self.vocab)} tokens")
        if batch_range != self.batch_range:
            self.corpus = load_corpus(self.args.batches_dir_path, self.vocab, *batch_range)
            self.batch_range, self.token_weights = batch_range, self.corpus.docs.weights
        self.own = OwnRows(*token_range)
        self.is_own = (self.corpus.rows >= self.own.begin) & (self.corpus.rows < self.own.end)
        self.status.token_range, self.status.batch_range = token_range, batch_range
        self.status.documents = self.corpus.docs.count

    def fence(self) -> None:
        """Before changing the model in Redis: raise HeartbeatLapsed if the heartbeat lapsed since the command
        was taken (stopped or starved past its TTL). The master may have given this executor up meanwhile, taken
        over its share and laid the model out anew: what the command would write (phi rows, contributions) or
        delete (others' contributions) now belongs to another layout or pass."""
        self.heartbeat.beat()
        if self.heartbeat.lapses != self.lapses:
            raise HeartbeatLapsed(f"executor {self.args.executor_id}: its heartbeat lapsed (stopped or starved past "
                                  f"its time to live) during this command; its results are not written")

    def use_model_settings(self, command: dict[str, Any]) -> None:
        """Classes, class weights and regularizers of the run (the master's, so all executors agree)."""
        self.classes = list(command["classes"])
        weights = {str(c): float(w) for c, w in command.get("class_weights", {}).items()}
        self.regularizers = [make_regularizer(r) for r in command.get("regularizers", [])]
        self.topic_names = list(command["topic_names"])
        try:
            check_against_model(self.regularizers, weights, self.topic_names, self.classes, self.args.num_inner_iter)
        except ConfigError as error:
            raise TrainingError(str(error)) from error
        slot = {c: i for i, c in enumerate(self.classes)}
        vocab_slots = np.asarray([slot[c] for c in self.vocab.class_ids], dtype=np.int32)
        self.own_slots = vocab_slots[self.own.begin:self.own.end]
        docs = dataclasses.replace(self.corpus.docs, weights=self.token_weights)
        docs, self.modalities = e_step_inputs(docs, vocab_slots[self.corpus.rows], self.classes, weights,
                                              self.regularizers, self.topic_names, self.args.num_inner_iter)
        self.corpus = dataclasses.replace(self.corpus, docs=docs)

    def positive_sums(self, values: np.ndarray) -> np.ndarray:
        """n_t per class of own rows: positive sums per topic (BigARTM's FindNormalizers); classes x topics."""
        return class_positive_sums(values, self.own_slots, len(self.classes))

    def by_class(self, sums: np.ndarray) -> dict[str, list[float]]:
        return {c: sums[i].tolist() for i, c in enumerate(self.classes)}

    # -- phases -------------------------------------------------------------------------------

    def prepare(self, command: dict[str, Any]) -> dict[str, Any]:
        topics = int(command["topics"])
        if topics != self.args.num_topics:
            raise TrainingError(f"the master trains {topics} topics, this executor was started with "
                                f"--num-topics {self.args.num_topics}")
        if self.args.seed is not None and self.args.seed != int(command["seed"]):
            raise TrainingError(f"the master seeds the model with {command['seed']}, this executor was started "
                                f"with --seed {self.args.seed}")
        self.layout = Layout.from_dict(self.args.cluster, command["layout"])
        # The master's record of the assignment: a lost executor's share may be ours too (master take_over).
        self.take_ranges(tuple(command["token_range"]), tuple(command["batch_range"]))
        self.use_model_settings(command)
        begin, end = self.own.begin, self.own.end
        reply: dict[str, Any] = {}
        mode = command["init"]
        if mode == "rejoin":  # a lost executor came back, or a master resumes: the committed model
            source = Layout.from_dict(self.args.cluster, command["source_layout"])
            self.own.phi = store.read_range(self.client, source, int(command["source_generation"]), begin, end)
            self.own.nwt = self.own_increments = None
            return self.corpus_figures()
        # "move": the run goes on with other executors (scale), whatever this one's start flags say.
        if mode != "move" and ((mode == "continue") != bool(self.args.continue_fitting)
                               or (self.args.init_phi and mode != "file")):
            raise TrainingError(f"the master initialises the model from {_SOURCES[mode]}, but this executor was "
                                f"started with --continue-fitting {self.args.continue_fitting}"
                                + (f" --init-phi {self.args.init_phi}" if self.args.init_phi else ""))
        if mode == "random":
            raw = random_rows(self.vocab.tokens[begin:end], self.vocab.class_ids[begin:end], int(command["seed"]), topics)
            self.own.nwt = raw
            reply["n_t"] = self.by_class(self.positive_sums(raw))
        else:
            if mode == "file":
                path = self.args.init_phi or Path(command["init_phi"])
                self.own.phi = phi_rows_for(self.vocab, begin, end, path, topics)
            else:  # continue, or move: the committed model, written again in this run's layout
                source = Layout.from_dict(self.args.cluster, command["source_layout"])
                self.own.phi = store.read_range(self.client, source, int(command["source_generation"]), begin, end)
            if end > begin:
                self.fence()
                store.write_range(self.client, self.layout, int(command["generation"]), begin, self.own.phi)
        return {**reply, **self.corpus_figures()}

    def corpus_figures(self) -> dict[str, Any]:
        return {"token_weight": self.corpus.token_weight, "documents": self.corpus.docs.count,
                "skipped_entries": self.corpus.skipped_entries, "skipped_weight": self.corpus.skipped_weight,
                "rows": int(len(self.corpus.rows)), "foreign_rows": int((~self.is_own).sum())}

    def normalise(self, command: dict[str, Any]) -> dict[str, Any]:
        """The M-step of own rows: max(n_wt + r_wt, 0) over the class's n_t; phi score sums if asked."""
        assert self.layout is not None and self.own.nwt is not None
        n_t = np.asarray([command["n_t"][c] for c in self.classes], dtype=np.float64).reshape(-1, self.layout.topics)
        self.own.phi = np.empty(self.own.nwt.shape, dtype=np.float32)
        for rows in row_blocks(*self.own.nwt.shape):
            self.own.phi[rows] = normalise_rows(self.own.nwt[rows], n_t[self.own_slots[rows]])
        self.own.nwt = None
        if self.own.end > self.own.begin:
            self.fence()
            store.write_range(self.client, self.layout, int(command["generation"]), self.own.begin, self.own.phi)
        if "kernel_n_t" not in command:
            return {}
        in_class = np.asarray(self.vocab.class_ids[self.own.begin:self.own.end]) == SCORE_CLASS
        return {"phi_scores": phi_partials(self.own.phi, in_class, np.asarray(command["kernel_n_t"]))}

    def e_step(self, command: dict[str, Any]) -> dict[str, Any]:
        assert self.layout is not None and self.own.phi is not None
        started = time.perf_counter()
        docs, rows, is_own, used = self.corpus.docs, self.corpus.rows, self.is_own, None
        modalities = self.modalities
        if "update" in command:  # online: this update's batches only (engine.online)
            docs, used = update_documents(self.corpus, int(command["update"]), int(command["update_every"]))
            rows, is_own = rows[used], is_own[used]
            modalities = dataclasses.replace(modalities, row_class=modalities.row_class[used])
        phi = np.empty((len(rows), self.layout.topics), dtype=np.float32)
        phi[is_own] = self.own.phi[rows[is_own] - self.own.begin]
        phi[~is_own] = store.read_rows(self.client, self.layout, int(command["generation"]), rows[~is_own])
        fetched = time.perf_counter()
        self.status.documents_done = 0
        counting = threading.Lock()

        def done(documents: int) -> None:
            with counting:
                self.status.documents_done += documents

        result = e_step(docs, phi, self.args.num_inner_iter, self.args.num_threads,
                        tick=self.heartbeat.tick, done=done, modalities=modalities)
        computed = time.perf_counter()
        increments = result.nwt.astype(np.float32)
        if used is None:
            self.own_increments = increments[is_own]
        else:
            every = np.zeros((len(self.corpus.rows), self.layout.topics), dtype=np.float32)
            every[used] = increments
            self.own_increments = every[self.is_own]
        self.fence()
        blocks = store.write_contributions(self.client, self.layout, command["run"], int(command["pass"]),
                                           self.args.executor_id, rows[~is_own], increments[~is_own])
        return {"class_loglik": result.class_loglik.tolist(), "class_weight": result.class_weight.tolist(),
                "zero_words": result.zero_words, "zero_theta": result.zero_theta, "documents": docs.count,
                "blocks": blocks,
                "seconds": {"fetch": fetched - started, "kernel": computed - fetched,
                            "send": time.perf_counter() - computed}}

    def aggregate(self, command: dict[str, Any]) -> dict[str, Any]:
        assert self.layout is not None and self.own_increments is not None
        wanted = [(int(block), int(executor)) for block, executor in command["contributions"]]
        self.fence()  # the read deletes what it reads
        parts = store.read_contributions(self.client, self.layout, command["run"], int(command["pass"]), wanted)
        own_rows = self.corpus.rows[self.is_own]
        begin = self.own.begin
        nwt = np.zeros((self.own.end - begin, self.layout.topics), dtype=np.float64)
        for block in self.layout.blocks_of(begin, self.own.end):
            first, stop = self.layout.block_rows(block)
            mine = (own_rows >= first) & (own_rows < stop)
            block_parts = [(self.args.executor_id, own_rows[mine] - first, self.own_increments[mine])]
            block_parts += [(executor, *parts[(b, executor)]) for b, executor in wanted if b == block]
            nwt[first - begin:stop - begin] = store.sum_block(self.layout, block, block_parts)
        if "apply" in command:  # online: blend into the counters of earlier updates (engine.online)
            previous = self.online_nwt if self.online_nwt is not None else self.own.phi
            nwt = blend(previous, nwt, float(command["decay"]), float(command["apply"]))
            self.online_nwt = nwt
        self.own_increments = None
        own_classes = [self.classes[i] for i in self.own_slots]
        terms = phi_terms(self.regularizers, self.own.phi, own_classes, self.topic_names)
        relative = relative_regularizers(self.regularizers)  # r_wt comes with the master's gamma (regularize)
        r_wt = None if relative else combine_terms(terms, own_classes)
        self.own.nwt = nwt if r_wt is None else nwt + r_wt
        # The pass's counters, unregularized: the kernel score's n_t, and n_t itself when nothing is added.
        raw = self.positive_sums(nwt) if r_wt is None or SCORE_CLASS in self.classes else None
        reply: dict[str, Any] = {}
        if SCORE_CLASS in self.classes:
            reply["kernel_n_t"] = raw[self.classes.index(SCORE_CLASS)].tolist()
        if relative:  # gamma: the master needs global sums first
            self.pending_terms = terms
            return {**reply, "raw_n_t": self.by_class(raw), "relative": relative_sums(terms, own_classes, self.classes)}
        return {**reply, "n_t": self.by_class(raw if r_wt is None else self.positive_sums(self.own.nwt))}

    def regularize(self, command: dict[str, Any]) -> dict[str, Any]:
        """Relative regularization: r_wt with the master's coefficients; n_t per class of n_wt + r_wt."""
        assert self.own.nwt is not None
        own_classes = [self.classes[i] for i in self.own_slots]
        self.own.nwt = self.own.nwt + combine_terms(self.pending_terms, own_classes, command["coefficients"])
        self.pending_terms = []
        return {"n_t": self.by_class(self.positive_sums(self.own.nwt))}

    # -- loop ---------------------------------------------------------------------------------

    def serve(self, channel: ExecutorChannel, deadline: float) -> None:
        """Answer commands until termination; raises on abort, a lost master or a failure."""
        handlers = {"prepare": ("preparation", self.prepare), "normalise": ("normalisation", self.normalise),
                    "e-step": ("e-step", self.e_step), "aggregate": ("aggregate", self.aggregate),
                    "regularize": ("regularization", self.regularize)}
        while True:
            self.lapses = self.heartbeat.lapses  # a lapse from here on may have let the master give us up
            try:
                command = channel.next_command(deadline, self.heartbeat.tick, attached=self.attached(channel))
            except REDIS_ERRORS as error:
                self.ride_out(error, "waiting for a command")
                continue
            op = command.get("op")
            self.status.pass_number = int(command.get("pass", self.status.pass_number))
            if op == "terminate":
                self.status.state = "termination"
                channel.reply(command)
                return
            if op == "abort":
                raise RunAborted(f"run {channel.run} aborted by the master: {command.get('reason', '')}")
            if op not in handlers:
                raise TrainingError(f"unknown command {op!r} from the master of run {channel.run}")
            self.status.state = handlers[op][0]
            cpu = time.process_time()
            try:
                self.heartbeat.beat()  # its key may be on a node that is failing over: ridden out as below
                reply = handlers[op][1](command)
                reply["cpu_seconds"] = time.process_time() - cpu
            except HeartbeatLapsed as error:  # the master redoes the pass, with this executor or without it
                print(f"{error}; waiting for the master's next command", flush=True)
                self.answer(channel, command, error=str(error), lapsed=True)
                continue
            except (*REDIS_ERRORS, store.LostContribution) as error:
                # The master redoes the pass from the committed model; this command's work is void.
                self.ride_out(error, handlers[op][0])
                self.answer(channel, command, error=f"Redis: {describe_redis_error(error)}", interrupted=True)
                continue
            except Exception as error:
                text = str(error) if isinstance(error, ArtmComposeError) else f"{type(error).__name__}: {error}"
                channel.reply(command, error=text)
                raise
            self.answer(channel, command, **reply)

    def answer(self, channel: ExecutorChannel, command: dict[str, Any], **fields: Any) -> None:
        """Reply; a reply lost to a failover is left unsent (the master notices the failover and redoes the pass)."""
        try:
            channel.reply(command, **fields)
        except REDIS_ERRORS as error:
            self.ride_out(error, "replying")

    def ride_out(self, error: BaseException, doing: str) -> None:
        """Wait (bounded) for the cluster to serve every slot again after a Redis error; raises if it won't."""
        why = f"executor {self.args.executor_id}: Redis error while {doing} ({describe_redis_error(error)})"
        print(f"{why}; waiting up to {self.args.failover_timeout:g} s for the cluster", flush=True)
        started = time.monotonic()
        wait_for_cluster(self.client, self.args.failover_timeout, why, self.heartbeat.tick)
        self.heartbeat.beat()
        print(f"executor {self.args.executor_id}: the cluster serves every slot again after "
              f"{time.monotonic() - started:.1f} s", flush=True)

    def attached(self, channel: ExecutorChannel):
        """Callback for the channel: show the run just joined in the heartbeat at once."""
        def publish() -> None:
            self.status.run = channel.run
            self.status.state = "waiting"
            self.heartbeat.beat()
        return publish


def report_failure(channel: ExecutorChannel, status: ExecutorStatus, heartbeat: Heartbeat, error: str,
                   deadline: float) -> None:
    """Tell a master (the current one, or the first to appear before ``deadline``) why we cannot work."""
    status.state = "failed"
    status.error = error
    try:
        status.run = channel.attach(deadline, heartbeat.tick)
    except TrainingError:
        return
    heartbeat.beat()  # the key outlives us by its TTL: long enough for the master's next look


def run(args: argparse.Namespace) -> None:
    started = time.monotonic()
    deadline = started + args.startup_timeout
    client = connect(args, deadline=deadline)
    patience = (1 - TTL_FRACTION) * args.heartbeat_timeout  # the master's lease lives TTL_FRACTION of it
    channel = ExecutorChannel(client=client, cluster=args.cluster, executor=args.executor_id, patience=patience)
    status = ExecutorStatus(executor=args.executor_id, token_range=(args.token_begin_index, args.token_end_index),
                            batch_range=(args.batch_begin_index, args.batch_end_index))
    heartbeat = Heartbeat(client, heartbeat_key(args.cluster, args.executor_id), args.heartbeat_timeout, status.payload)
    heartbeat.start()
    clean = False
    try:
        try:
            warm_up()
            prepare_slot_tags()
            heartbeat.tick()
            vocab = read_vocab(args.vocab_path)
            corpus = load_corpus(args.batches_dir_path, vocab, args.batch_begin_index, args.batch_end_index)
            executor = Executor(args, client, vocab, corpus, status, heartbeat)
        except ArtmComposeError as error:
            heartbeat.stop()
            report_failure(channel, status, heartbeat, str(error), deadline)
            raise
        status.state = "waiting"
        print(f"executor {args.executor_id}: {corpus.docs.count} documents in {len(corpus.batch_names)} batches, "
              f"{len(corpus.rows)} phi rows, tokens [{args.token_begin_index}, {args.token_end_index}) "
              f"(ready in {time.monotonic() - started:.1f} s)", flush=True)
        while True:
            try:
                executor.serve(channel, deadline)
                break
            except MasterGone as gone:  # a restarted master resumes the run: wait for it, fresh
                print(f"executor {args.executor_id}: {gone}; waiting up to {args.startup_timeout:g} s for a new "
                      f"master", flush=True)
                channel = ExecutorChannel(client=client, cluster=args.cluster, executor=args.executor_id,
                                          patience=patience)
                executor = Executor(args, client, vocab, corpus, status, heartbeat)
                status.run, status.state = None, "waiting"
                deadline = time.monotonic() + args.startup_timeout
        clean = True
    finally:
        heartbeat.stop(delete=clean)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    program = f"artm-compose-executor {args.executor_id}"

    def run_to_the_end() -> None:
        try:
            run(args)
        except (NoMaster, RunAborted) as error:  # the run is over: nothing to restart for
            print(f"{program}: error: {error}", file=sys.stderr, flush=True)
            sys.exit(EXIT_FINAL)

    run_or_exit(program, run_to_the_end)
    print(f"executor {args.executor_id}: terminated by the master", flush=True)


if __name__ == "__main__":
    main()
