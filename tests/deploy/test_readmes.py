"""The READMEs' lists of what is not done yet name nothing that is done, and every command of the vault and the
connectors is in their README."""

from __future__ import annotations

import re
from pathlib import Path

import click
import pytest

from services.vault.rules.item_ids import VERTICALS
from tests.deploy.test_docs import resolve

ROOT = Path(__file__).resolve().parents[2]
READMES = sorted([ROOT / "README.md", *ROOT.glob("services/*/README.md"), *ROOT.glob("connectors/**/README.md")])
INLINE_COMMAND = re.compile(r"`relais ([a-z][a-z| -]*)")


def not_done(text: str) -> str:
    """The parts of a README that say what is not done: a "Not done yet" section, a "Not built yet" item."""
    parts = re.findall(r"^#+ Not (?:done|built) yet\n(.*?)(?=^#|\Z)", text, re.M | re.S)
    parts += re.findall(r"^[*-] Not (?:done|built) yet:(.*?)(?=^[*-] |^\n|\Z)", text, re.M | re.S)
    return "\n".join(parts)


def alternatives(words: str) -> list[list[str]]:
    """`vault export|import|verify` -> [vault export], [vault import], [vault verify]."""
    out: list[list[str]] = [[]]
    for word in words.split():
        out = [[*prefix, choice] for prefix in out for choice in word.split("|")]
    return out


@pytest.mark.parametrize("readme", READMES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_command_the_readmes_call_not_done_exists(readme):
    for found in INLINE_COMMAND.findall(not_done(readme.read_text())):
        for words in alternatives(found):
            command, rest = resolve(list(words))
            assert rest, f"{readme.relative_to(ROOT)} lists `relais {' '.join(words)}` as not done, but it exists"


def test_no_readme_calls_the_vault_schemas_per_vertical_not_built():
    assert all((ROOT / "contracts" / "vault" / "schemas" / f"{v}.json").is_file() for v in VERTICALS)
    for readme in READMES:
        assert not re.search(r"schemas? (per|for each) vertical", not_done(readme.read_text()), re.I), readme


@pytest.mark.parametrize("group,readme", [("vault", "services/vault/README.md"),
                                          ("connectors", "connectors/README.md")])
def test_every_command_of_the_group_is_in_its_readme(group, readme):
    command, _rest = resolve([group])
    assert isinstance(command, click.Group)
    text = (ROOT / readme).read_text()
    missing = [name for name in command.list_commands(click.Context(command))
               if not re.search(rf"relais {group} {name}\b", text)]
    assert missing == [], f"{readme} does not show `relais {group} ...` for {missing}"
