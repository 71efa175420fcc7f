"""The operator guide (deploy/) stays true to the code: links resolve, and every
`relais ...` command it tells operators to run exists with the options it names."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import click
import pytest

from app.cli import main

ROOT = Path(__file__).resolve().parents[2]
PAGES = sorted((ROOT / "deploy").rglob("*.md"))
LINK = re.compile(r"\[[^\]]+\]\(([^)\s]+)\)")
COMMAND = re.compile(r"(?:^|[\s`(])relais(?:-admin)? ((?:[a-z][a-z-]*)(?: [^\n`|;&)]*)?)")
CONTAINERS = {"directory", "provisioning", "provisioning-api", "sso", "usage", "vault"}


def commands(line: str) -> list[str]:
    """`relais ...` as a command: at the start of a line or of inline code, after `--` (kubectl exec),
    or after `exec SERVICE` (docker compose); not the word relais as a user or alias name."""
    found = []
    for match in COMMAND.finditer(line):
        before = line[:match.start() + 1].rstrip()
        words = before.split()
        if (not before or before.endswith(("`", "--")) or before.endswith("relais-admin")
                or (len(words) >= 2 and words[-2] == "exec" and words[-1] in CONTAINERS)):
            found.append(match.group(1))
    return found


def anchors(page: Path) -> set[str]:
    """GitHub's anchors for the headings of a page."""
    out = set()
    for heading in re.findall(r"^#+ (.+)$", page.read_text(), re.M):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        out.add(slug)
    return out


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_links_resolve(page):
    for target in LINK.findall(page.read_text()):
        if re.match(r"[a-z]+:", target):
            continue  # external
        path, _, anchor = target.partition("#")
        resolved = (page.parent / path).resolve() if path else page
        assert resolved.exists(), f"{page.name}: {target} does not exist"
        if anchor:
            assert anchor in anchors(resolved), f"{page.name}: no heading #{anchor} in {resolved.name}"


def resolve(words: list[str]) -> tuple[click.Command, list[str]]:
    """The deepest command that `relais WORDS...` names, and the words left after it."""
    command: click.Command = main
    while words and isinstance(command, click.Group):
        sub = command.get_command(click.Context(command), words[0])  # service groups load on demand
        if sub is None:
            break
        command = sub
        words.pop(0)
    return command, words


def test_every_relais_command_in_the_guide_exists():
    seen = 0
    for page in PAGES:
        for line in page.read_text().splitlines():
            for found in commands(line):
                words = shlex.split(found.split(" #")[0].replace("...", ""), posix=True)
                command, rest = resolve(list(words))
                where = f"{page.relative_to(ROOT)}: relais {found.strip()}"
                assert command is not main, f"{where}: no such command"
                if isinstance(command, click.Group):
                    assert not rest or rest[0].startswith("-"), f"{where}: {command.name} has no {rest[0]}"
                options = {o for p in command.params for o in getattr(p, "opts", [])}
                for word in rest:
                    if word.startswith("--"):
                        assert word.split("=")[0] in options, f"{where}: {command.name} has no option {word}"
                seen += 1
    assert seen > 30  # the guide does name commands; a broken pattern must not make this pass vacuously
