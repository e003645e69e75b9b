"""``python -m artm_compose``: the CLI, for processes started without the console script on PATH."""

from artm_compose.cli.main import main

main()
