"""The console entry point: every error becomes one line ``error: ...`` and an exit code."""

from __future__ import annotations

import sys

import click

from artm_compose.cli.group import cli
from artm_compose.errors import ArtmComposeError, BootstrapError, ImageBuildError, TrainingError

FAILED_RUN_EXIT = 1
BAD_INPUT_EXIT = 2
INTERRUPTED_EXIT = 130
# Errors of a run that started and failed; every other ArtmComposeError is bad input found before starting.
_FAILED_RUN_ERRORS = (BootstrapError, TrainingError, ImageBuildError)


def main(argv: list[str] | None = None) -> None:
    """Console entry point: one-line errors, exit 2 for bad input, 1 for a failed run, 130 on Ctrl-C."""
    try:
        code = cli.main(args=argv, prog_name="artm-compose", standalone_mode=False)
    except click.UsageError as error:
        hint = f" (see: {error.ctx.command_path} --help)" if error.ctx is not None else ""
        _fail(f"{error.format_message()}{hint}", BAD_INPUT_EXIT)
    except click.Abort:
        _fail("aborted", INTERRUPTED_EXIT)
    except click.ClickException as error:
        _fail(error.format_message(), error.exit_code)
    except _FAILED_RUN_ERRORS as error:
        _fail(str(error), FAILED_RUN_EXIT)
    except ArtmComposeError as error:
        _fail(str(error), BAD_INPUT_EXIT)
    except KeyboardInterrupt:
        _fail("interrupted", INTERRUPTED_EXIT)
    sys.exit(code if isinstance(code, int) else 0)


def _fail(message: str, code: int) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)
