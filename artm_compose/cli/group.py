"""The ``artm-compose`` command group; command groups that live with their subsystem load only when used."""

from __future__ import annotations

import importlib
import importlib.util

import click

from artm_compose import __version__

# Commands that live with their subsystem, loaded only when used (a missing one does not break the CLI).
_LAZY_COMMANDS = {
    "data": ("artm_compose.data.commands", "data_group"),
    "build": ("artm_compose.images.commands", "build_command"),
    "swarm": ("artm_compose.cli.swarm_commands", "swarm_group"),
    "dashboard": ("artm_compose.dashboard.commands", "dashboard_command"),
    "plot": ("artm_compose.dashboard.commands", "plot_command"),
}


class _Commands(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        lazy = [name for name, (module, _) in _LAZY_COMMANDS.items() if importlib.util.find_spec(module)]
        return [*super().list_commands(ctx), *sorted(lazy)]

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in _LAZY_COMMANDS and name not in self.commands:
            module_name, attribute = _LAZY_COMMANDS[name]
            if importlib.util.find_spec(module_name) is None:
                return None
            return getattr(importlib.import_module(module_name), attribute)
        return super().get_command(ctx, name)


@click.group(cls=_Commands, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.version_option(__version__, prog_name="artm-compose")
def cli() -> None:
    """Distributed BigARTM-style topic-model training on a Redis Cluster.

    \b
    A virtual node is one Redis instance plus the executors that talk to it; the master
    drives the EM passes. Typical use:
      artm-compose plan --nodes 4 --data batches/          # what would run where
      artm-compose up --nodes 4 --data batches/ --topics 50 # start, train, follow progress
      artm-compose status                                   # members by role, cluster state
      artm-compose down                                     # stop everything started
    Runtimes: local (processes on this machine), compose (Docker Compose), swarm.
    """
