"""The shared folder (the sample AAF export, the GAR's XSDs) is found one way: `RELAIS_SHARED_DIR`, else beside
the checkout. Tests take `SHARED` from tests/conftest.py, tools from tools/__init__.py; no file builds the path
itself, so a machine whose shared folder sits elsewhere runs every test and tool by setting the variable."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LOOKUPS = {ROOT / "tests" / "conftest.py", ROOT / "tools" / "__init__.py"}
# The word as a path: divided by, or a string starting with it (or ../ and it) then a slash; not a dict key
OWN_PATH = re.compile(r"""/\s*["']shared["']|["'](?:\.\./)?shared/""")


def test_the_lookups_read_relais_shared_dir():
    for path in LOOKUPS:
        assert re.search(r'^SHARED = Path\(os\.environ\.get\("RELAIS_SHARED_DIR", ', path.read_text(), re.M), path


def test_no_test_or_tool_builds_the_shared_path_itself():
    own = [f"{path.relative_to(ROOT)}:{n}: {line.strip()}"
           for folder in ("tests", "tools") for path in sorted((ROOT / folder).rglob("*.py")) if path not in LOOKUPS
           for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if OWN_PATH.search(line)]
    assert own == [], "use SHARED from tests/conftest.py or tools/__init__.py:\n" + "\n".join(own)
