"""The commands shown in docs/denoise_your_scans.md parse with the commands' own argument parsers (flags
and required arguments exist), so the page cannot drift from the CLI unnoticed. That they run end to end
on tiny data is recorded on the page itself."""

from __future__ import annotations

import importlib
import re
import shlex
from pathlib import Path

import pytest

DOC = Path(__file__).parents[2] / "docs" / "denoise_your_scans.md"


def _commands() -> list[list[str]]:
    out = []
    for block in re.findall(r"```bash\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S):
        for line in block.replace("\\\n", " ").splitlines():
            words = shlex.split(line, comments=True)
            if words and words[0].startswith("medgan-"):
                out.append(words)
    return out


def test_the_page_shows_the_whole_workflow():
    assert {c[0] for c in _commands()} >= {"medgan-prepare", "medgan-train", "medgan-infer", "medgan-eval",
                                          "medgan-simulate"}


@pytest.mark.parametrize("words", _commands(), ids=lambda w: " ".join(w[:2]))
def test_each_command_on_the_page_parses(words):
    module = importlib.import_module(f"medgan.cli.{words[0].removeprefix('medgan-')}")
    module._parser().parse_args(words[1:])  # argparse exits (SystemExit) on an unknown or missing flag
