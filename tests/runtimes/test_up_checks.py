"""`up` checks the plan and the initial phi before anything starts: a refusal leaves no process and no state
behind."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from artm_compose.api import Cluster
from artm_compose.config import ClusterConfig
from artm_compose.containers import SERVICE_ADDRESSING
from artm_compose.data.vocab import read_vocab
from artm_compose.errors import ArtmComposeError, ConfigError
from artm_compose.plan import make_plan
from artm_compose.runtimes.local.runtime import LocalRuntime
from artm_compose.state import StateDir
from support.engine import dpkg_corpus

TOPICS = 4


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    return dpkg_corpus(tmp_path_factory.mktemp("up-checks") / "dpkg")


def _npz(path: Path, tokens: list[str], topics: int) -> Path:
    phi = np.full((len(tokens), topics), 1.0 / max(len(tokens), 1), dtype=np.float32)
    np.savez(path, phi=phi, tokens=np.array(tokens))
    return path


def _up(corpus: Path, state: Path, init_phi: Path, **extra) -> None:
    cluster = Cluster(ClusterConfig(runtime="local", nodes=1, data_dir=corpus, topics=TOPICS, init_phi=init_phi,
                                    state_dir=state, **extra))
    cluster.up(detach=True, echo=lambda _message: None)


def test_a_plan_with_another_runtimes_addressing_is_refused(tmp_path):
    config = ClusterConfig(runtime="local", nodes=2, state_dir=tmp_path / "state")
    plan = make_plan(config, addressing=SERVICE_ADDRESSING)  # nodes at redis-0:7000, redis-1:7000
    with pytest.raises(ConfigError, match="the local runtime as"):
        LocalRuntime(StateDir.at(config.state_dir)).up(plan, echo=lambda _message: None)
    assert not config.state_dir.exists()


@pytest.mark.parametrize("problem", ["missing", "topics", "tokens", "continue"])
def test_bad_initial_phi_is_refused_before_anything_starts(corpus, tmp_path, problem):
    tokens = read_vocab(corpus / "vocab.txt").tokens
    init_phi, extra, expected = {
        "missing": (tmp_path / "absent.npz", {}, "absent.npz does not exist"),
        "topics": (_npz(tmp_path / "wide.npz", tokens, TOPICS + 3), {},
                   f"has {TOPICS + 3} topics, the model has {TOPICS}"),
        "tokens": (_npz(tmp_path / "short.npz", tokens[1:], TOPICS), {}, f"lacks 1 vocabulary token(s): {tokens[0]!r}"),
        "continue": (_npz(tmp_path / "ok.npz", tokens, TOPICS), {"continue_fitting": True}, "exclude each other"),
    }[problem]
    state = tmp_path / "state"
    with pytest.raises(ArtmComposeError, match=expected.replace("(", r"\(").replace(")", r"\)")):
        _up(corpus, state, init_phi, **extra)
    assert not state.exists(), f"up left {sorted(p.name for p in state.iterdir())} in {state}"


def test_a_matching_initial_phi_passes_the_check(corpus, tmp_path):
    from artm_compose.runtimes.lifecycle import check_initial_phi
    from artm_compose.runtimes.local.runtime import LOOPBACK

    tokens = read_vocab(corpus / "vocab.txt").tokens
    config = ClusterConfig(runtime="local", data_dir=corpus, topics=TOPICS, state_dir=tmp_path / "state",
                           init_phi=_npz(tmp_path / "ok.npz", list(reversed(tokens)) + ["extra"], TOPICS))
    check_initial_phi(make_plan(config, addressing=LOOPBACK))
