"""Where the repository and the BigARTM reference venv are."""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
REFERENCE_PYTHON = Path(os.environ.get("ARTM_REFERENCE_VENV", ROOT / ".venv-ref")) / "bin" / "python"
REFERENCE_SCRIPT = ROOT / "scripts" / "bigartm_reference.py"
