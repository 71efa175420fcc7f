"""connectors/GUIDE.md stays true: it explains every check of the kit (and no check that is gone), the commands
it tells vendors to run exist with their options, and its links resolve."""
from __future__ import annotations

import re
import shlex
from pathlib import Path

from connectors.sdk.conformance import ConnectorConformance, ConnectorDeclaration
from tests.deploy.test_docs import resolve

ROOT = Path(__file__).resolve().parents[2]
GUIDE = ROOT / "connectors" / "GUIDE.md"


def checks(cls: type) -> set[str]:
    return {name for name in dir(cls) if name.startswith("test_")}


def test_the_guide_explains_every_check_of_the_kit():
    rows = set(re.findall(r"^\| `(test_\w+)` \|", GUIDE.read_text(), re.M))
    kit = checks(ConnectorDeclaration) | checks(ConnectorConformance)
    assert len(kit) >= 12
    assert sorted(kit - rows) == [], "checks of the kit the guide does not explain"
    assert sorted(rows - kit) == [], "checks the guide explains that the kit no longer has"


def test_the_commands_and_links_of_the_guide_exist():
    text = GUIDE.read_text()
    found = re.findall(r"^relais (connectors [^#\n]+)", text, re.M) + re.findall(r"`relais (connectors [^`]+)`", text)
    assert len(found) >= 3
    for line in found:
        words = shlex.split(line.replace("\\", ""))
        command, rest = resolve(list(words))
        assert command.name != "connectors", line
        options = {o for p in command.params for o in getattr(p, "opts", [])}
        assert all(w in options for w in rest if w.startswith("--")), line
    for target in re.findall(r"\]\(([^)\s#]+)", text):
        if not re.match(r"[a-z]+:", target):
            assert (GUIDE.parent / target).exists(), target
