"""The runtimes by name, each imported only when chosen (a runtime whose module or prerequisites are
missing does not break the others).

A runtime is a sub-package ``artm_compose.runtimes.<name>`` (its module ``runtime`` exposes ``RUNTIME``, a
:class:`~artm_compose.runtimes.lifecycle.Runtime` subclass) that owns the files only it renders, from its
own ``templates/``.
"""

from __future__ import annotations

import importlib

from artm_compose.addressing import Addressing
from artm_compose.errors import RuntimeUnavailable
from artm_compose.runtimes.lifecycle import Runtime
from artm_compose.state import StateDir

RUNTIME_MODULES = {
    "local": "artm_compose.runtimes.local.runtime",
    "compose": "artm_compose.runtimes.compose.runtime",
    "swarm": "artm_compose.runtimes.swarm.runtime",
}


def runtime_class(name: str) -> type[Runtime]:
    """The runtime class registered under ``name``, imported on first use."""
    module_name = RUNTIME_MODULES.get(name)
    if module_name is None:
        raise RuntimeUnavailable(f"runtime={name!r} is unknown; choose one of {', '.join(RUNTIME_MODULES)}")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        if error.name not in (module_name, module_name.rpartition(".")[0]):
            raise
        raise RuntimeUnavailable(f"runtime {name!r} is not available yet in this version of artm-compose; "
                                 f"use --runtime local") from None
    return module.RUNTIME


def get_runtime(name: str, state: StateDir) -> Runtime:
    return runtime_class(name)(state)


def addressing_of(name: str) -> Addressing:
    """How the runtime ``name`` addresses its Redis nodes, for :func:`artm_compose.plan.make_plan`."""
    return runtime_class(name).addressing
