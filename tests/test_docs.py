"""The documentation stays true: the README is short and undated, every command in it and in the guide names configs
and options that exist, and its results block is what scripts/results_table.py writes from docs/results/."""

import contextlib
import io
import re
import shlex
import sys
from pathlib import Path

import pytest

from dip_lightning.cli import build
from tests.helpers import REPO

sys.path.insert(0, str(REPO / "scripts"))
import results_table  # noqa: E402

GUIDE = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
DATE = re.compile(r"\b20\d\d-\d\d-\d\d\b")
BEFORE_NOW = re.compile(r"\bbefore\s*(->|→|/\s*now|:)|\|\s*before\s*\(|\bbefore this session\b", re.IGNORECASE)


def commands(path: Path) -> list[list[str]]:
    """The commands of the fenced bash blocks of ``path``, continuation lines joined, comments dropped."""
    found = []
    for block in re.findall(r"```bash\n(.*?)```", path.read_text(), re.DOTALL):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.split(" # ")[0].strip()
            if line and not line.startswith("#"):
                found += [shlex.split(part) for part in line.split(" && ")]
    return found


def cli_commands() -> list[tuple[str, list[str]]]:
    return [(f"{path.name}: {' '.join(words)[:90]}", words[1:]) for path in GUIDE for words in commands(path)
            if words[0] == "dip-lightning"]


def test_the_readme_is_a_short_undated_guide():
    text = (REPO / "README.md").read_text()
    assert len(text.splitlines()) <= 300
    for path in [REPO / "README.md", *sorted((REPO / "configs").rglob("*.yaml"))]:
        content = path.read_text()
        assert not DATE.search(content), f"{path.name} has a date: {DATE.search(content).group()}"
        assert not BEFORE_NOW.search(content), f"{path.name} compares before and now: {BEFORE_NOW.search(content).group()}"


def test_the_guide_has_commands_and_every_script_it_names_exists():
    assert len(cli_commands()) >= 20
    for path in GUIDE:
        for words in commands(path):
            scripts = [w for w in words if w.startswith("scripts/") or w.startswith("configs/")]
            for name in scripts:
                assert (REPO / name).exists(), f"{path.name} names {name}, which does not exist"


@pytest.mark.parametrize(("where", "arguments"), cli_commands(), ids=[where for where, _ in cli_commands()])
def test_every_documented_command_parses(where, arguments, monkeypatch):
    """Every config and option a documented ``dip-lightning`` command names exists: the CLI parses it (with
    ``--print_config``, which stops before building anything)."""
    monkeypatch.chdir(REPO)
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed), pytest.raises(SystemExit) as stopped:
        build([*arguments, "--print_config"])
    assert stopped.value.code in (0, None) and "model:" in printed.getvalue()


def test_the_readme_results_block_is_what_the_script_writes():
    readme = (REPO / "README.md").read_text()
    assert results_table.readme_block(readme) == results_table.block(), "run python scripts/results_table.py"
    for link in re.findall(r"\]\((docs/results/[^)]+)\)", results_table.block()):
        assert (REPO / link).is_file(), link
