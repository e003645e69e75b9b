#!/usr/bin/env python3
"""Writes compose/compose.yml and compose/stack.yml: the rendered files of a 4-node example cluster.

They are what `artm-compose up` (Compose) and `artm-compose swarm render` (Swarm) write into a state
directory, for people who read or run them by hand. The Jinja2 templates in the package stay the one
source: this script renders them for a fixed example (paths under /srv/artm, images tagged `latest`,
a fixed network), and tests/runtimes/test_examples.py fails when the files here are stale.
Usage: scripts/render_examples.py [--check]
"""

from __future__ import annotations

import ipaddress
import sys
from pathlib import Path

import numpy as np

from artm_compose.acl import ADMIN_USER, READER_USER, TRAINING_USER
from artm_compose.runtimes.compose.compose_file import render_compose
from artm_compose.config import ClusterConfig
from artm_compose.containers import SERVICE_ADDRESSING
from artm_compose.data.summary import DataSummary
from artm_compose.docker_env import layout_network
from artm_compose.images.build import ImageTags
from artm_compose.plan import make_plan
from artm_compose.state import StateDir
from artm_compose.runtimes.swarm.stack import render_stack

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "compose"
EXAMPLE = Path("/srv/artm")
IMAGES = ImageTags(redis="artm-compose/redis:latest", artm="artm-compose/artm:latest")
NODES, EXECUTORS_PER_NODE, BATCHES, VOCABULARY = 4, 2, 16, 10_000
USER = "1000:1000"
# Only their hashes go into the files (the Swarm secrets' and the users config's names); the real passwords
# are the state directory's, made by `up`. Fixed here, so the examples do not depend on this machine.
PLACEHOLDER_PASSWORDS = {user: f"written-by-artm-compose-up-for-{user}" for user in (ADMIN_USER, TRAINING_USER, READER_USER)}


def example_plan():
    config = ClusterConfig(name="example", nodes=NODES, executors_per_node=EXECUTORS_PER_NODE, topics=50,
                           iterations=20, state_dir=EXAMPLE / "state", data_dir=EXAMPLE / "corpus")
    data = DataSummary(batches_dir=EXAMPLE / "corpus", vocab_path=EXAMPLE / "corpus" / "vocab.txt",
                       batch_names=tuple(f"batch_{i:04d}.batch" for i in range(BATCHES)),
                       batch_weights=np.full(BATCHES, 1000.0), token_weights=np.full(VOCABULARY, 1.6))
    return make_plan(config, data, addressing=SERVICE_ADDRESSING)


def rendered() -> dict[Path, str]:
    """Every example file and its text."""
    plan = example_plan()
    state = StateDir.at(plan.config.state_dir)
    network = layout_network(ipaddress.ip_network("10.210.0.0/24"), NODES)
    compose = render_compose(plan, state, images=IMAGES, network=network, user=USER)
    swarm_plan = make_plan(plan.config.replace(runtime="swarm"), plan.data, addressing=SERVICE_ADDRESSING)
    stack = render_stack(swarm_plan, state, images=IMAGES, groups={n: n for n in range(NODES)},
                         manager_id="MANAGER-NODE-ID", passwords=PLACEHOLDER_PASSWORDS, user=USER)
    return {OUT / "compose.yml": compose, OUT / "stack.yml": stack}


def main(argv: list[str]) -> int:
    stale = [path for path, text in rendered().items() if not path.exists() or path.read_text() != text]
    if "--check" in argv:
        for path in stale:
            print(f"stale: {path.relative_to(ROOT)} (run scripts/render_examples.py)", file=sys.stderr)
        return 1 if stale else 0
    for path, text in rendered().items():
        path.write_text(text)
        print(path.relative_to(ROOT))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
