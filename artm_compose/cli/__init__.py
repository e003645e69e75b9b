"""``artm-compose``: plan, render, bring up, inspect and stop a topic-model training cluster.

A thin layer over :mod:`artm_compose.api`: options become a validated ClusterConfig once
(:mod:`artm_compose.cli.options`); commands raise the project's errors and :func:`main` turns them into
one line ``error: ...`` and an exit code (2 for bad input, 1 for a failed run).
"""

from artm_compose.cli import cluster_commands, plan_commands  # noqa: F401  (they register their commands)
from artm_compose.cli.group import cli
from artm_compose.cli.main import main

__all__ = ["cli", "main"]
