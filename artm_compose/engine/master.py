"""The master program: drives preparation, normalisation and the EM passes of one run.

Accepts the reference master's flags (SYSTEM.md section 2) with the same names and meaning,
plus ours: ``--regularizer`` and ``--class-id`` (BigARTM's regularizers and class weights,
``engine.regularizers``), ``--scores``. It prints the scores of every pass (with a progress bar on a
terminal), writes ``--scores-path`` (JSON, ``engine.scores``) and, with ``--show-top-tokens 1``, the
top tokens of every topic.

Exit status: 0 when every pass is committed; 1 when training stopped (an executor died, failed
or went silent, bad input, a timeout), with a one-line reason naming the executor and the pass
on stderr. The model of the last committed pass stays in Redis either way.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Callable

import numpy as np
from redis.cluster import RedisCluster

from artm_compose.data.vocab import Vocabulary, read_vocab
from artm_compose.engine import model_store as store
from artm_compose.engine.checkpoint import Checkpoint, mismatch, read_checkpoint, restore, write_checkpoint
from artm_compose.engine.connect import (DEFAULT_MAX_RESTARTS, DEFAULT_RESTART_TIMEOUT, add_connection_flags,
                                         check_timeouts, connect, run_or_exit)
from artm_compose.engine.export import topic_names
from artm_compose.engine.failover import (REDIS_ERRORS, FailoverWatch, describe_redis_error, wait_for_cluster,
                                          wait_for_heartbeats, wait_for_replicas)
from artm_compose.engine.layout import Layout, block_starts, prepare_slot_tags
from artm_compose.engine.model_store import ModelRecord
from artm_compose.engine.online import (DEFAULT_KAPPA, DEFAULT_TAU0, DEFAULT_UPDATE_EVERY, MODES, OnlineSchedule,
                                        Update, check_online)
from artm_compose.engine.progress import ProgressLine
from artm_compose.engine.regularizers import (check_against_model, check_class_weights, parse_class_weight,
                                              parse_shorthand, relative_coefficients, relative_regularizers)
from artm_compose.engine import scores as score_math
from artm_compose.engine.protocol import (ClusterInterrupted, ExecutorInfo, ExecutorLost, MasterChannel, Heartbeat,
                                          master_key, master_payload, new_run_id, read_master, read_progress,
                                          take_scale_request, write_progress)
from artm_compose.errors import ConfigError, DataError, TrainingError

TOP_TOKENS = 10
# How long (fraction of the heartbeat timeout) the replicas may take to acknowledge a pass's writes.
REPLICATION_FRACTION = 0.2


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="artm-compose-master", description=__doc__.splitlines()[0])
    parser.add_argument("--num-topics", type=int, required=True)
    parser.add_argument("--num-outer-iter", type=int, default=10, help="collection passes; 0 = initialise only")
    parser.add_argument("--num-executors", type=int, required=True)
    parser.add_argument("--num-executor-threads", type=int, default=1, help="recorded in the scores")
    parser.add_argument("--batches-dir-path", type=Path, required=True)
    parser.add_argument("--vocab-path", type=Path, required=True)
    parser.add_argument("--show-top-tokens", type=int, choices=(0, 1), default=0)
    parser.add_argument("--continue-fitting", type=int, choices=(0, 1), default=0)
    parser.add_argument("--seed", type=int, default=0, help="seed of the random initial phi")
    parser.add_argument("--init-phi", type=Path, help="initial phi (.npz export or CSV of get_phi())")
    parser.add_argument("--scores-path", type=Path, help="write per-pass scores here (JSON)")
    parser.add_argument("--mode", choices=MODES, default="offline", help="offline EM, or online as fit_online")
    parser.add_argument("--update-every", type=int, default=DEFAULT_UPDATE_EVERY,
                        help="online: batches of every executor per phi update")
    parser.add_argument("--tau0", type=float, default=DEFAULT_TAU0, help="online: rho = (tau0 + k) ** -kappa")
    parser.add_argument("--kappa", type=float, default=DEFAULT_KAPPA, help="online: rho = (tau0 + k) ** -kappa")
    parser.add_argument("--regularizer", action="append", default=[], metavar="TYPE:tau=X,...",
                        help="a BigARTM regularizer, e.g. SmoothSparsePhiRegularizer:tau=-0.1 (repeatable)")
    parser.add_argument("--class-id", action="append", default=[], metavar="CLASS=WEIGHT",
                        help="class weight as artm.ARTM(class_ids=...), e.g. @tag=5 (repeatable)")
    parser.add_argument("--max-restarts", type=int, default=DEFAULT_MAX_RESTARTS,
                        help="times an executor may be lost and come back (restarted by its runtime) in this run; "
                             "after each, the interrupted pass is redone from the committed model")
    parser.add_argument("--restart-timeout", type=float, default=DEFAULT_RESTART_TIMEOUT,
                        help="seconds to wait for a lost executor to come back")
    parser.add_argument("--scores", choices=score_math.SCORE_SETS, default="all",
                        help="all scores, or basic: perplexity and sparsity_theta only")
    parser.add_argument("--checkpoint-path", type=Path,
                        help="checkpoint file (.npz); a run whose Redis lost the model goes on from it "
                             "(engine.checkpoint)")
    parser.add_argument("--checkpoint-every", type=int, default=0,
                        help="passes between checkpoints (offline mode); 0: none")
    add_connection_flags(parser)
    args = parser.parse_args(argv)
    check_timeouts(parser, args)
    try:
        args.regularizers = [parse_shorthand(text) for text in args.regularizer]
        args.class_weights = check_class_weights(dict(parse_class_weight(text) for text in args.class_id))
    except ConfigError as error:
        parser.error(str(error))
    for name in ("num_topics", "num_executors"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')}={getattr(args, name)} must be >= 1")
    if args.max_restarts < 0 or args.restart_timeout <= 0:
        parser.error(f"--max-restarts={args.max_restarts} must be >= 0 and --restart-timeout="
                     f"{args.restart_timeout:g} > 0")
    if args.num_outer_iter < 0:
        parser.error(f"--num-outer-iter={args.num_outer_iter} must be >= 0")
    if args.checkpoint_every < 0 or (args.checkpoint_every and args.checkpoint_path is None):
        parser.error(f"--checkpoint-every={args.checkpoint_every} must be >= 0, and > 0 only with --checkpoint-path")
    if args.checkpoint_path is not None and args.checkpoint_path.suffix != ".npz":
        parser.error(f"--checkpoint-path={args.checkpoint_path}: use a .npz file name")
    if args.continue_fitting and args.init_phi:
        parser.error("--continue-fitting 1 and --init-phi exclude each other")
    try:
        check_online(args.mode, args.update_every, args.tau0, args.kappa)
    except ConfigError as error:
        parser.error(str(error))
    return args


@dataclass
class Scores:
    """The per-pass figures the master writes to ``--scores-path``."""

    run: str
    topics: int
    executors: int
    threads: int
    first_pass: int = 1
    token_weight: float = 0.0
    documents: int = 0
    skipped_weight: float = 0.0
    init_seconds: float = 0.0
    perplexity: list[float] = field(default_factory=list)
    perplexity_by_class: dict[str, list[float]] = field(default_factory=dict)
    zero_words: list[int] = field(default_factory=list)
    sparsity_theta: list[float] = field(default_factory=list)
    sparsity_phi: list[float] = field(default_factory=list)
    kernel_size: list[float] = field(default_factory=list)
    kernel_purity: list[float] = field(default_factory=list)
    kernel_contrast: list[float] = field(default_factory=list)
    top_tokens: list[list[str]] = field(default_factory=list)
    class_ids: dict[str, float] = field(default_factory=dict)
    regularizers: list[dict[str, Any]] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    bytes_moved: list[int] = field(default_factory=list)
    bytes_minimum: list[int] = field(default_factory=list)
    phase_seconds: list[dict[str, float]] = field(default_factory=list)
    executor_cpu_seconds: list[float] = field(default_factory=list)
    online: dict[str, Any] | None = None  # online mode: OnlineSchedule.summary
    restarts: list[dict[str, Any]] = field(default_factory=list)  # lost executors that came back
    failovers: list[dict[str, Any]] = field(default_factory=list)  # passes redone after a lost Redis node
    resumed: list[dict[str, Any]] = field(default_factory=list)  # runs this one went on with (master restarts)
    checkpoints: list[dict[str, Any]] = field(default_factory=list)  # pass, seconds, bytes of each written
    rescaled: list[dict[str, Any]] = field(default_factory=list)  # scale: after which pass, from, to, seconds
    taken_over: list[dict[str, Any]] = field(default_factory=list)  # executors that never came back: by whom

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Scores:
        known = {f.name for f in fields(cls)}
        return cls(**{key: value for key, value in data.items() if key in known})

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def check_ranges(infos: dict, vocab_size: int) -> list[tuple[int, int]]:
    """The executors' token ranges in id order, which must tile ``[0, vocab_size)``."""
    ranges = [tuple(infos[e].token_range) for e in sorted(infos)]
    position = 0
    for executor, (begin, end) in zip(sorted(infos), ranges):
        if begin != position or end < begin:
            raise TrainingError(f"executor {executor} owns tokens [{begin}, {end}) but the ranges must continue "
                                f"at {position}: token ranges must tile the vocabulary in executor-id order")
        position = end
    if position != vocab_size:
        raise TrainingError(f"the executors' token ranges end at {position}, the vocabulary has {vocab_size} tokens")
    return ranges


class Master:
    """One run of the protocol over registered executors."""

    def __init__(self, args: argparse.Namespace, client: RedisCluster, channel: MasterChannel,
                 echo: Callable[[str], None], bar: ProgressLine):
        self.args = args
        self.client = client
        self.channel = channel
        self.echo = echo
        self.bar = bar
        self.committed: ModelRecord | None = None  # committed by this run
        self.scores = Scores(run=channel.run, topics=args.num_topics, executors=args.num_executors,
                             threads=args.num_executor_threads)
        self.progress: dict[str, Any] = {"run": channel.run, "state": "waiting", "pass": 0,
                                         "passes": args.num_outer_iter, "executor_count": args.num_executors,
                                         "perplexity": [], "seconds": []}
        self.foreign_rows: list[int] = []
        self.scores.class_ids = dict(args.class_weights)
        self.scores.regularizers = [r.to_dict() for r in args.regularizers]
        self.topic_names = topic_names(args.num_topics)
        self.classes: list[str] = []  # the vocabulary's class ids, in order of first appearance
        self.online = (OnlineSchedule(args.update_every, args.tau0, args.kappa) if args.mode == "online" else None)
        if self.online is not None:
            self.scores.online = self.online.summary

    @property
    def kept_pass(self) -> int | None:
        return None if self.committed is None else self.committed.pass_number

    def set_state(self, state: str, **extra: Any) -> None:
        self.progress.update(state=state, **extra)
        write_progress(self.client, self.args.cluster, self.progress)

    def round(self, commands: dict[int, dict[str, Any]], phase: str, pass_number: int) -> dict[int, dict[str, Any]]:
        sequence = self.channel.send(commands)
        return self.channel.collect(sequence, commands, phase, pass_number, self.kept_pass)

    def prepare(self, layout: Layout, resume: ModelRecord | None = None) -> int:
        """Preparation and normalisation: the initial model committed; returns its generation. With
        ``resume`` (a restarted master going on with its run) every executor loads that committed model."""
        args = self.args
        previous = store.read_model_record(self.client, args.cluster)
        command = self.prepare_command(layout)
        start_pass = 0
        if resume is not None:
            command.update(init="rejoin", source_layout=resume.layout.to_dict(), source_generation=resume.generation)
            start_pass = resume.pass_number
        elif args.continue_fitting:
            if previous is None:
                raise TrainingError(f"--continue-fitting 1: cluster {args.cluster!r} holds no model in Redis "
                                    f"(key {store.model_key(args.cluster)})")
            if previous.layout.topics != args.num_topics or previous.layout.vocab_size != layout.vocab_size:
                raise TrainingError(
                    f"--continue-fitting 1: the model in Redis has {previous.layout.topics} topics x "
                    f"{previous.layout.vocab_size} tokens, this run has {args.num_topics} x {layout.vocab_size}")
            command.update(init="continue", source_layout=previous.layout.to_dict(),
                           source_generation=previous.generation)
            start_pass = previous.pass_number
        elif args.init_phi:
            command.update(init="file", init_phi=str(args.init_phi))
        else:
            command.update(init="random")
        generation = 0 if previous is None else previous.generation + (0 if resume is not None else 1)
        command["generation"] = generation
        self.set_state("preparation")
        replies = self.round(self.with_ranges(command), "preparation", start_pass)
        ordered = [replies[e] for e in sorted(replies)]
        self.scores.token_weight = float(sum(r["token_weight"] for r in ordered))
        self.scores.documents = int(sum(r["documents"] for r in ordered))
        self.scores.skipped_weight = float(sum(r["skipped_weight"] for r in ordered))
        if resume is None:
            self.scores.first_pass = start_pass + 1
        self.foreign_rows = [int(r["foreign_rows"]) for r in ordered]
        if self.scores.skipped_weight:
            self.echo(f"skipped token weight {self.scores.skipped_weight:g} of tokens missing from the vocabulary")
        n_t = None
        if command["init"] == "random":
            n_t = self.sum_topics(ordered)
            self.set_state("normalisation")
            self.round({e: {"op": "normalise", "n_t": n_t, "generation": generation} for e in self.channel.executors},
                       "normalisation", start_pass)
        self.commit(ModelRecord(generation=generation, pass_number=start_pass, layout=layout,
                                run=self.channel.run, n_t=all_classes(n_t)))
        return generation

    def prepare_command(self, layout: Layout, **init: Any) -> dict[str, Any]:
        """The ``prepare`` command of ``layout`` with the run's model settings; ``init`` says where phi comes from."""
        args = self.args
        return {"op": "prepare", "topics": args.num_topics, "layout": layout.to_dict(), "seed": args.seed,
                "classes": self.classes, "class_weights": args.class_weights, "regularizers": self.scores.regularizers,
                "topic_names": self.topic_names, **init}

    def with_ranges(self, command: dict[str, Any]) -> dict[int, dict[str, Any]]:
        """``command`` for every executor with the ranges the master assigns it: its own at registration, a
        lost one's share too after a take-over; a restarted executor or master goes on with these."""
        return {e: {**command, "token_range": list(info.token_range), "batch_range": list(info.batch_range)}
                for e, info in self.channel.executors.items()}

    def rescale(self, request: dict[str, Any]) -> tuple[Layout, int]:
        """Go on with ``request["executors"]`` executors (``artm-compose scale``), between passes: the
        current ones end, the new ones (started by the runtime with the new plan's ranges) register and
        take over the committed model (:meth:`relayout`); returns its layout and generation."""
        committed, count = self.committed, int(request["executors"])
        started, before = time.monotonic(), len(self.channel.executors)
        self.bar.clear()
        self.echo(f"scaling from {before} to {count} executor(s) after pass {committed.pass_number}")
        gone = frozenset(info.instance for info in self.channel.executors.values())
        self.round({e: {"op": "terminate"} for e in self.channel.executors}, "termination", committed.pass_number)
        for executor in self.channel.executors:
            self.channel.forget(executor)
        self.args.num_executors = self.scores.executors = self.progress["executor_count"] = count
        self.set_state("rescaling", scale_request=request.get("request"))
        self.channel.wait_for_registration(range(count), self.args.restart_timeout, self.echo, gone=gone)
        layout, generation = self.relayout()
        seconds = time.monotonic() - started
        self.scores.rescaled.append({"pass": committed.pass_number, "from": before, "to": count, "seconds": seconds})
        self.echo(f"{count} executor(s) go on from the model of pass {committed.pass_number} ({seconds:.1f} s)")
        return layout, generation

    def sum_topics(self, ordered: list[dict[str, Any]], key: str = "n_t") -> dict[str, list[float]]:
        """n_t per class: the owners' partial sums added in executor-id order."""
        totals = {c: np.zeros(self.args.num_topics, dtype=np.float64) for c in self.classes}
        for reply in ordered:
            for class_id, values in reply[key].items():
                totals[class_id] += np.asarray(values, dtype=np.float64)
        return {c: v.tolist() for c, v in totals.items()}

    def relative_coefficients(self, ordered: list[dict[str, Any]]) -> list[dict[str, list[float]]]:
        """Per phi regularizer with gamma, per class: BigARTM's relative coefficients from the owners' sums."""
        raw_n_t = self.sum_topics(ordered, key="raw_n_t")
        relative = relative_regularizers(self.args.regularizers)
        coefficients = []
        for index, regularizer in enumerate(relative):
            r_it = {c: np.sum([reply["relative"][index][c] for reply in ordered], axis=0) for c in self.classes}
            coefficients.append(relative_coefficients(regularizer, r_it, raw_n_t, self.topic_names, self.classes))
        return coefficients

    def heal(self, lost: ExecutorLost) -> tuple[Layout, int]:
        """Wait for a lost executor to come back, bring every executor back to the committed model, and
        return that model's layout and generation, from which the interrupted pass is redone; one that does
        not come back in time has its share taken over (:meth:`take_over`). Raises TrainingError when it
        cannot be healed (online mode, restarts used up, no other executor)."""
        args = self.args
        used = sum(1 for r in self.scores.restarts if r["executor"] == lost.executor)
        if self.online is not None or used >= args.max_restarts or self.committed is None:
            why = ("online mode keeps counters in the executors" if self.online is not None
                   else f"{args.max_restarts} restart(s) of executor {lost.executor} used up")
            raise TrainingError(f"{lost} ({why})") from lost
        started = time.monotonic()
        self.bar.clear()
        self.echo(f"{lost}; waiting up to {args.restart_timeout:g} s for it to come back "
                  f"(restart {used + 1} of {args.max_restarts})")
        self.set_state("recovery", executor=lost.executor)
        self.channel.forget(lost.executor)
        try:
            info = self.channel.wait_for_rejoin(lost.executor, args.restart_timeout)
        except TrainingError as gone:
            return self.take_over(lost, str(gone))
        committed = self.rejoin_committed(lost.pass_number)
        seconds = time.monotonic() - started
        self.scores.restarts.append({"executor": lost.executor, "pass": lost.pass_number, "phase": lost.phase,
                                     "pid": info.pid, "seconds": seconds})
        self.echo(f"executor {lost.executor} is back (pid {info.pid}) after {seconds:.1f} s; redoing pass "
                  f"{lost.pass_number} from the model of pass {committed.pass_number}")
        return committed.layout, committed.generation

    def take_over(self, lost: ExecutorLost, why: str) -> tuple[Layout, int]:
        """The share of an executor that did not come back goes to its neighbour in id order (the ranges
        tile in that order, so the merged ones are ranges again): it loads the batches and owns the
        tokens, the model is laid out anew, and the interrupted pass is redone from the committed model."""
        executors = self.channel.executors
        rest = sorted(e for e in executors if e != lost.executor)
        if not rest:
            raise TrainingError(f"{lost}: {why}; no other executor can take over its share")
        heir = max((e for e in rest if e < lost.executor), default=rest[0])
        gone, kept = executors.pop(lost.executor), executors[heir]
        ranges = {}
        for kind in ("token_range", "batch_range"):
            a, b = sorted((getattr(kept, kind), getattr(gone, kind)))
            if a[1] != b[0]:
                raise TrainingError(f"{lost}: {why}; executor {heir}'s {kind} {a} does not adjoin {b}")
            ranges[kind] = (a[0], b[1])
        executors[heir] = dataclasses.replace(kept, **ranges)
        # Should it go on after all (it was stopped, not gone), it ends instead of waiting on its queue.
        self.channel.send({lost.executor: {"op": "terminate"}})
        self.echo(f"{lost}: {why}; executor {heir} takes over its batches {gone.batch_range} and tokens "
                  f"{gone.token_range}")
        layout, generation = self.relayout()
        self.scores.taken_over.append({"executor": lost.executor, "by": heir, "pass": lost.pass_number, **ranges})
        self.scores.executors = len(executors)  # the executors left (their ids need not be 0..n-1)
        self.progress["executor_count"] = max(executors) + 1
        return layout, generation

    def relayout(self) -> tuple[Layout, int]:
        """The committed model written again in the layout of the executors' token ranges, each executor
        its own range (``init move``), after taking the range the master assigns it; the new layout and
        generation. Passes after it add contributions in another order: float rounding only."""
        committed, args = self.committed, self.args
        vocab_size = committed.layout.vocab_size
        layout = Layout(cluster=args.cluster, topics=args.num_topics,
                        starts=tuple(block_starts(check_ranges(self.channel.executors, vocab_size), vocab_size,
                                                  args.num_topics)))
        generation = committed.generation + 1
        command = self.prepare_command(layout, init="move", source_layout=committed.layout.to_dict(),
                                       source_generation=committed.generation, generation=generation)
        replies = self.round(self.with_ranges(command), "preparation", committed.pass_number)
        self.foreign_rows = [int(replies[e]["foreign_rows"]) for e in sorted(replies)]
        self.commit(ModelRecord(generation=generation, pass_number=committed.pass_number, layout=layout,
                                run=self.channel.run, n_t=committed.n_t))
        return layout, generation

    def rejoin_committed(self, pass_number: int) -> ModelRecord:
        """Every executor back to the committed model (a recovery round of pass ``pass_number``)."""
        committed = self.committed
        assert committed is not None
        command = self.prepare_command(committed.layout, init="rejoin", source_layout=committed.layout.to_dict(),
                                       source_generation=committed.generation, generation=committed.generation)
        self.round(self.with_ranges(command), "recovery", pass_number)
        return committed

    def ride_out_failover(self, error: Exception, pass_number: int, watch: FailoverWatch) -> tuple[Layout, int]:
        """A Redis node was lost during pass ``pass_number``: wait (bounded) until the cluster serves every slot
        again (its replica promoted), bring every executor back to the committed model and return its layout
        and generation, from which the pass is redone. Bounded by --max-restarts per run; online mode cannot."""
        args = self.args
        if self.online is not None or len(self.scores.failovers) >= args.max_restarts or self.committed is None:
            why = ("online mode keeps counters in the executors" if self.online is not None
                   else f"{args.max_restarts} recoveries from a lost Redis node used up")
            raise TrainingError(f"Redis failed during pass {pass_number}: {describe_redis_error(error)} ({why})"
                                ) from error
        started = time.monotonic()
        self.bar.clear()
        why = f"Redis failed during pass {pass_number} ({describe_redis_error(error)})"
        self.echo(f"{why}; waiting up to {args.failover_timeout:g} s for the cluster to serve every slot again")
        view = wait_for_cluster(self.client, args.failover_timeout, why, self.channel.tick)
        watch.reset(view.epoch)
        wait_for_heartbeats(self.client, args.cluster, self.channel.executors, args.failover_timeout,
                            args.heartbeat_timeout, self.channel.tick)
        self.set_state("recovery", failover=len(self.scores.failovers) + 1)
        try:
            committed = self.rejoin_committed(pass_number)
        except ExecutorLost as lost:
            if not lost.lapsed:
                raise
            # Its heartbeat key was out of reach past its TTL (on the lost node, or the executor cut off): the
            # executor counted a lapse while it waited for a command, and refused this one. Every heartbeat is
            # back and nobody was given up: it takes the next command.
            self.echo(f"{lost}: the failover's doing; bringing the executors back again")
            committed = self.rejoin_committed(pass_number)
        seconds = time.monotonic() - started
        self.scores.failovers.append({"pass": pass_number, "error": describe_redis_error(error), "seconds": seconds,
                                      "epoch": view.epoch})
        self.echo(f"the Redis Cluster serves every slot again after {seconds:.1f} s; redoing pass {pass_number} "
                  f"from the model of pass {committed.pass_number}")
        return committed.layout, committed.generation

    def commit(self, record: ModelRecord) -> None:
        """Make ``record`` the committed model, with the executors training it (a restarted master's assignment)."""
        record = dataclasses.replace(record, executors={e: (info.token_range, info.batch_range)
                                                        for e, info in self.channel.executors.items()})
        store.commit_model(self.client, record)
        self.committed = record

    def checkpoint_due(self, number: int) -> bool:
        """Every ``--checkpoint-every`` passes of the run but its last (the model in Redis is the result);
        offline only: online counters live in the executors, which a checkpoint cannot hold."""
        every, first = self.args.checkpoint_every, self.scores.first_pass
        return (bool(every) and self.online is None and (number - first + 1) % every == 0
                and number < first + self.args.num_outer_iter - 1)

    def checkpoint(self, number: int) -> None:
        """Write the model committed by pass ``number`` and the scores so far to ``--checkpoint-path``."""
        path = self.args.checkpoint_path
        seconds = write_checkpoint(self.client, self.args.cluster, self.args.vocab_path, path,
                                   last_pass=self.scores.first_pass + self.args.num_outer_iter - 1,
                                   scores=self.scores.to_dict(), executors=self.committed.executors)
        self.scores.checkpoints.append({"pass": number, "seconds": seconds, "bytes": path.stat().st_size})
        if self.args.scores_path:
            write_scores(self.args.scores_path, self.scores)

    def one_pass(self, layout: Layout, generation: int, number: int) -> int:
        """E-step, aggregation, normalisation and commit of pass ``number``; returns the new generation.

        Offline that is done once; online (``--mode online``) once per update of the pass, each update
        committing its phi (:mod:`artm_compose.engine.online`).
        """
        executors = list(self.channel.executors)
        bytes_before = store.net_bytes(self.client)
        started = time.perf_counter()
        cpu = 0.0
        class_loglik = np.zeros(len(self.classes))
        class_weight = np.zeros(len(self.classes))
        zero_words = zero_theta = documents = 0
        phi_partials: list[dict[str, Any]] = []
        phases = {"e_step": 0.0, "kernel_max": 0.0, "aggregate": 0.0, "normalise": 0.0}
        updates = self.pass_updates()
        for update in updates:
            step_started = time.perf_counter()
            self.set_state("iterations", **{"pass": number, "phase": "e-step"})
            self.bar.show(number - self.scores.first_pass + 1, "e-step")
            e_fields = update.e_step_fields() if update is not None else {}
            replies = self.round({e: {"op": "e-step", "pass": number, "generation": generation, **e_fields}
                                  for e in executors}, "the e-step", number)
            e_step_done = time.perf_counter()
            step_loglik = step_weight = 0.0
            for reply in (replies[e] for e in sorted(replies)):
                class_loglik += reply["class_loglik"]
                class_weight += reply["class_weight"]
                step_loglik += sum(reply["class_loglik"])
                step_weight += sum(reply["class_weight"])
                zero_words += reply["zero_words"]
                zero_theta += reply["zero_theta"]
                documents += reply["documents"]
            wanted: dict[int, list[list[int]]] = {e: [] for e in executors}
            for executor in sorted(replies):
                for block in replies[executor]["blocks"]:
                    wanted[self.owner(layout, block)].append([block, executor])
            self.bar.show(number - self.scores.first_pass + 1, "aggregate")
            merge = update.aggregate_fields() if update is not None else {}
            partial = self.round({e: {"op": "aggregate", "pass": number, "contributions": wanted[e], **merge}
                                  for e in executors}, "aggregation", number)
            ordered = [partial[e] for e in sorted(partial)]
            if relative_regularizers(self.args.regularizers):
                coefficients = self.relative_coefficients(ordered)
                regularized = self.round({e: {"op": "regularize", "pass": number, "coefficients": coefficients}
                                          for e in executors}, "regularization", number)
                cpu += sum(reply["cpu_seconds"] for reply in regularized.values())
                n_t = self.sum_topics([regularized[e] for e in sorted(regularized)])
            else:
                n_t = self.sum_topics(ordered)
            normalise: dict[str, Any] = {"op": "normalise", "pass": number, "n_t": n_t}
            if self.args.scores == "all" and score_math.SCORE_CLASS in self.classes:
                normalise["kernel_n_t"] = np.sum([r["kernel_n_t"] for r in ordered], axis=0).tolist()
            aggregated = time.perf_counter()
            self.bar.show(number - self.scores.first_pass + 1, "normalise")
            generation += 1
            normalised = self.round({e: {**normalise, "generation": generation} for e in executors},
                                    "normalisation", number)
            # The replicas first hold the pass's writes, so a primary lost after the commit loses none of them.
            wait_for_replicas(self.client, self.args.cluster, REPLICATION_FRACTION * self.args.heartbeat_timeout,
                              "normalisation", number)
            # Never commit across a failover: one that the pass's commands rode out (redis-py retries them until
            # the replica serves) raised nothing here, and the watch looks only when a reply is slow to come.
            self.channel.watch("normalisation", number, True)
            phi_partials = [normalised[e]["phi_scores"] for e in sorted(normalised) if "phi_scores" in normalised[e]]
            pending = ModelRecord(generation=generation, pass_number=number, layout=layout, run=self.channel.run,
                                  n_t=all_classes(n_t))
            if update is not None and update is not updates[-1]:
                self.commit(pending)  # online: every update commits; the pass's last one below
            finished = time.perf_counter()
            phases["e_step"] += e_step_done - step_started
            phases["kernel_max"] += max(replies[e]["seconds"]["kernel"] for e in replies)
            phases["aggregate"] += aggregated - e_step_done
            phases["normalise"] += finished - aggregated
            cpu += sum(reply["cpu_seconds"] for phase in (replies, partial, normalised) for reply in phase.values())
            if update is not None:
                self.online.record(update, step_loglik, step_weight)
        by_class = bool(self.args.class_weights)
        perplexity = score_math.perplexity(class_loglik, class_weight, by_class)
        moved = store.net_bytes(self.client) - bytes_before
        minimum = store.minimum_pass_bytes(layout.vocab_size, layout.topics, self.foreign_rows)
        scores = self.scores
        scores.perplexity.append(perplexity)
        for class_id, value in score_math.perplexity_by_class(self.classes, class_loglik, class_weight).items():
            scores.perplexity_by_class.setdefault(class_id, []).append(value)
        scores.zero_words.append(zero_words)
        scores.sparsity_theta.append(zero_theta / (documents * layout.topics) if documents else float("nan"))
        line = f"sparsity theta {scores.sparsity_theta[-1]:.3f}"
        if phi_partials:  # the phi scores of the model this pass committed
            figures = score_math.phi_scores(phi_partials, layout.topics)
            for key, value in figures.items():
                getattr(scores, key).append(value)
            line += (f" phi {figures['sparsity_phi']:.3f}  kernel size {figures['kernel_size']:.1f} "
                     f"purity {figures['kernel_purity']:.3f} contrast {figures['kernel_contrast']:.3f}")
        scores.seconds.append(finished - started)
        scores.bytes_moved.append(moved)
        scores.bytes_minimum.append(minimum)
        scores.phase_seconds.append(phases)
        scores.executor_cpu_seconds.append(cpu)
        self.progress["perplexity"] = scores.perplexity
        self.progress["seconds"] = scores.seconds
        # The scores first, then the commit: a master killed in between redoes this pass on resume and the
        # scores' extra pass is dropped (resumable_run); the other way round a pass's figures could be lost.
        if self.args.scores_path:
            write_scores(self.args.scores_path, scores)
        self.commit(pending)
        self.set_state("iterations", **{"pass": number, "phase": "committed"})
        self.bar.done(f"pass {number}: perplexity {perplexity:.4f}  {line}  {finished - started:.3f} s  "
                      f"{moved / 1e6:.2f} MB moved (minimum {minimum / 1e6:.2f} MB)")
        return generation

    def pass_updates(self) -> list[Update | None]:
        """Offline: one step per pass (None); online: the pass's updates."""
        if self.online is None:
            return [None]
        counts = [info.batch_range[1] - info.batch_range[0] for _, info in sorted(self.channel.executors.items())]
        return self.online.next_pass(counts)

    def owner(self, layout: Layout, block: int) -> int:
        first = layout.starts[block]
        for executor, info in self.channel.executors.items():
            if info.token_range[0] <= first < info.token_range[1]:
                return executor
        raise TrainingError(f"no executor owns block {block} (rows from {first})")

    def terminate(self) -> None:
        self.set_state("termination")
        try:
            self.round({e: {"op": "terminate"} for e in self.channel.executors}, "termination",
                       self.kept_pass or 0)
        except TrainingError as error:
            self.echo(f"warning: {error}")

    def abort(self, reason: str) -> None:
        """Best effort: tell the executors to stop now rather than after the master's timeout."""
        try:
            self.progress["error"] = reason
            self.set_state("failed")
            self.channel.send({e: {"op": "abort", "reason": reason} for e in self.channel.executors})
        except Exception:  # noqa: BLE001 - Redis may be the reason we abort
            pass


def resumable_run(client: RedisCluster, args: argparse.Namespace) -> tuple[Scores, ModelRecord] | None:
    """The run this master goes on with, when it is a restart of that run's master: the scores file
    (which a new ``up`` removes first) names the run the progress record in Redis shows unfinished, and
    that run committed the model in Redis. Raises when that run failed: a restart must not start over."""
    if args.scores_path is None or not args.scores_path.exists():
        return None
    try:
        earlier = json.loads(args.scores_path.read_text())
    except ValueError:
        return None
    progress = read_progress(client, args.cluster)
    if progress.get("run") != earlier.get("run"):
        return None
    # Before the model check: a restart policy also restarts a master that failed before its first commit.
    if progress.get("state") == "failed":
        raise TrainingError(f"run {earlier['run']} failed ({progress.get('error')}); not starting it again")
    record = store.read_model_record(client, args.cluster)
    if record is None or record.run != earlier.get("run"):
        return None
    if progress.get("state") in ("done", "termination"):
        return None
    if args.mode == "online":
        raise TrainingError(f"run {earlier['run']} (online) lost its master; online counters live in the "
                            f"executors, so it cannot be resumed: start it again with up --continue-fitting")
    scores = Scores.from_dict(earlier)
    recorded, committed = len(scores.perplexity), record.pass_number - scores.first_pass + 1
    if recorded > committed:  # killed between writing a pass's scores and committing it: redone
        for f in fields(Scores):
            value = getattr(scores, f.name)
            if isinstance(value, list) and len(value) == recorded:
                setattr(scores, f.name, value[:committed])
        for class_id, values in scores.perplexity_by_class.items():
            scores.perplexity_by_class[class_id] = values[:committed]
    return scores, record


def restorable_checkpoint(client: RedisCluster, args: argparse.Namespace, vocab: Vocabulary,
                         echo: Callable[[str], None]) -> Checkpoint | None:
    """The checkpoint this master goes on from: Redis holds no model of the cluster (its nodes lost their
    data) and ``--checkpoint-path`` holds an unfinished offline run of this run's topics and vocabulary."""
    path = args.checkpoint_path
    if path is None or not path.exists() or store.read_model_record(client, args.cluster) is not None:
        return None
    checkpoint = read_checkpoint(path)
    why = ("that run had finished" if checkpoint.finished
           else "online runs are not checkpointed" if args.mode == "online"
           else mismatch(checkpoint, vocab, args.num_topics))
    if why is not None:
        echo(f"not going on from checkpoint {path} of run {checkpoint.run} (pass {checkpoint.pass_number}): {why}")
        return None
    return checkpoint


def all_classes(n_t: dict[str, list[float]] | None) -> list[float] | None:
    """The record's n_t: per topic, summed over the classes."""
    return None if n_t is None else np.sum(list(n_t.values()), axis=0).tolist()


def final_top_tokens(client: RedisCluster, record: ModelRecord, vocab_path: Path) -> list[list[str]]:
    """TopTokensScore of the committed model (reads the whole phi once)."""
    vocab = read_vocab(vocab_path)
    phi = store.read_range(client, record.layout, record.generation, 0, record.layout.vocab_size)
    return score_math.top_tokens(phi, vocab.tokens, vocab.class_ids, TOP_TOKENS)


def run(args: argparse.Namespace, echo: Callable[[str], None]) -> Scores:
    started = time.monotonic()
    client = connect(args, deadline=started + args.startup_timeout)
    vocab = read_vocab(args.vocab_path)
    vocab_size = len(vocab)
    classes = list(dict.fromkeys(vocab.class_ids))
    try:
        check_against_model(args.regularizers, args.class_weights, topic_names(args.num_topics),
                            classes)
    except ConfigError as error:
        raise TrainingError(str(error)) from error
    prepare_slot_tags()
    run_id = new_run_id()
    state = {"state": "starting", "pass": 0}
    heartbeat = Heartbeat(client, master_key(args.cluster), args.heartbeat_timeout,
                          lambda: master_payload(run_id, state["state"], state["pass"]))
    if not heartbeat.acquire():
        holder = read_master(client, args.cluster) or {}
        raise TrainingError(f"cluster {args.cluster!r} already has a master: run {holder.get('run')} "
                            f"({holder.get('host')}, pid {holder.get('pid')}, {holder.get('state')}); one master per "
                            f"cluster (its lease {master_key(args.cluster)} is kept alive by that master)")
    heartbeat.start()
    try:
        resume = resumable_run(client, args)  # before this run's progress replaces the earlier run's
        restored = None if resume is not None else restorable_checkpoint(client, args, vocab, echo)
    except (TrainingError, DataError):
        heartbeat.stop(delete=True)
        raise
    if resume is None and restored is None and args.checkpoint_path is not None:
        args.checkpoint_path.unlink(missing_ok=True)  # an earlier run's: a later loss must not go back to it
    expected: dict[int, tuple[tuple[int, int], tuple[int, int]]] | None = None  # the executors and their ranges
    if resume is not None:  # restarted with its first command line: the run may have been scaled since
        args.num_executors = resume[0].executors
        expected = resume[1].executors  # and some taken over
    elif restored is not None:
        expected = restored.executors
    ids = sorted(expected) if expected else list(range(args.num_executors))
    channel = MasterChannel(client=client, cluster=args.cluster, run=run_id, tick=heartbeat.tick)
    master = Master(args, client, channel, echo, ProgressLine(args.num_outer_iter))
    master.classes = classes
    aborted = True
    try:
        echo(f"run {run_id}: waiting for {len(ids)} executor(s) in cluster {args.cluster!r}"
             + ("" if ids == list(range(len(ids))) else f" ({', '.join(map(str, ids))}: the others' shares were "
                                                         f"taken over)"))
        master.set_state("waiting")
        # Going on with a run, one that does not heartbeat for --restart-timeout is gone (as in a run):
        # its share is taken over below.
        channel.wait_for_registration(ids, args.startup_timeout, echo,
                                      absent_after=args.restart_timeout if expected else None)
        gone = [e for e in ids if e not in channel.executors]
        for executor, (tokens, batches) in (expected or {}).items():  # the committed model's, not the flags'
            known = channel.executors.get(executor) or ExecutorInfo(id=executor, instance="gone", host="", pid=0,
                                                                    token_range=tokens, batch_range=batches)
            channel.executors[executor] = dataclasses.replace(known, token_range=tokens, batch_range=batches)
        channel.executors = dict(sorted(channel.executors.items()))
        channel.watch = watch = FailoverWatch(client)
        layout = Layout(cluster=args.cluster, topics=args.num_topics,
                        starts=tuple(block_starts(check_ranges(channel.executors, vocab_size), vocab_size,
                                                  args.num_topics)))
        going_on: ModelRecord | None = None
        if resume is not None:
            earlier, going_on = resume
            echo(f"resuming run {earlier.run} (its master is gone) from the committed model of pass "
                 f"{going_on.pass_number}")
            earlier.resumed.append({"run": earlier.run, "pass": going_on.pass_number})
            earlier.run = run_id
            master.scores = earlier
        elif restored is not None:
            echo(f"Redis holds no model of cluster {args.cluster!r}: going on with run {restored.run} from its "
                 f"checkpoint of pass {restored.pass_number} ({args.checkpoint_path})")
            master.scores = Scores.from_dict(restored.scores)
            master.scores.resumed.append({"run": restored.run, "pass": restored.pass_number, "from": "checkpoint"})
            master.scores.run = run_id
            going_on = restore(client, layout, restored, run_id)
        if gone:  # taken over from the committed model, as in a run; this loads it for every executor
            master.committed = going_on
            for executor in gone:
                absent = ExecutorLost(executor, "registration", going_on.pass_number + 1,  # the pass to redo
                                      f"executor {executor} did not come back with the master")
                layout, generation = master.take_over(absent, f"no heartbeat for {args.restart_timeout:g} s")
        else:
            generation = master.prepare(layout, going_on)
        if going_on is None:
            master.scores.init_seconds = time.monotonic() - started
        if args.scores_path:  # names this run at once: a master restarted from now on resumes it
            write_scores(args.scores_path, master.scores)
        first = master.scores.first_pass
        start = master.committed.pass_number + 1 if master.committed is not None else first
        for number in range(start, first + args.num_outer_iter):
            state.update(state="iterations", **{"pass": number})
            lost: ExecutorLost | None = None
            failed: Exception | None = None
            while True:  # a lost executor came back, a Redis node failed over: the pass again, from the committed model
                try:
                    if lost is not None:
                        (layout, generation), lost = master.heal(lost), None
                    if failed is not None:
                        (layout, generation), failed = master.ride_out_failover(failed, number, watch), None
                    generation = master.one_pass(layout, generation, number)
                    break
                except ExecutorLost as error:
                    lost = error
                except (ClusterInterrupted, *REDIS_ERRORS) as error:
                    failed = error
            if master.checkpoint_due(number):
                master.checkpoint(number)
            request = take_scale_request(client, args.cluster)
            # Online counters live in the executors: `scale` refuses online runs before asking.
            if request is not None and master.online is None and number < first + args.num_outer_iter - 1:
                layout, generation = master.rescale(request)
        master.terminate()
        master.set_state("done")
        if args.checkpoint_path is not None:  # done: a later loss of Redis must not take this run up again
            args.checkpoint_path.unlink(missing_ok=True)
        if master.committed is not None and (args.show_top_tokens or args.scores == "all"):
            master.scores.top_tokens = final_top_tokens(client, master.committed, args.vocab_path)
            if args.show_top_tokens:
                for topic, tokens in enumerate(master.scores.top_tokens):
                    echo(f"topic_{topic}: " + " ".join(tokens))
        aborted = False
        return master.scores
    except BaseException as error:
        master.bar.clear()
        master.abort(str(error) or type(error).__name__)
        raise
    finally:
        if args.scores_path:
            write_scores(args.scores_path, master.scores)
        channel.close(aborted)
        heartbeat.stop(delete=True)


def write_scores(path: Path, scores: Scores) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(json.dumps(scores.to_dict(), indent=1))
    temporary.replace(path)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)

    def echo(message: str) -> None:
        print(message, flush=True)

    run_or_exit("artm-compose-master", lambda: run(args, echo))


if __name__ == "__main__":
    main()
