"""The Docker Swarm runtime: range labels on Swarm nodes, the data plan, and the file only it reads:
``stack.yml`` (:mod:`.stack`, from ``templates/``). The registry imports :mod:`.runtime` for ``RUNTIME``;
the ``swarm`` CLI group is :mod:`artm_compose.cli.swarm_commands`."""
