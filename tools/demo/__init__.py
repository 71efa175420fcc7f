"""`make demo` (`python -m tools.demo`): the sample academy end to end; `sso.py` and `vault.py` are two of its steps."""

import sys
from pathlib import Path

_SCRIPT = Path(sys.executable).with_name("relais")
# The `relais` command of this interpreter's environment (the installed entry point, else the same code).
RELAIS = [str(_SCRIPT)] if _SCRIPT.is_file() else [sys.executable, "-c", "from app.cli import main; main()"]
