"""The reference cannot drift from the code: the flag table is the parser's, and every page the README links
exists."""

from __future__ import annotations

import re

from tests.conftest import REPO


def test_the_cli_reference_is_the_parsers_own_text():
    from benchmarks.docs_cli import DOC, END, START, render

    text = DOC.read_text()
    block = text[text.index(START):text.index(END) + len(END)]
    assert block == render(), "docs/cli.md is stale: python -m benchmarks.docs_cli"


def test_every_flag_is_in_the_reference():
    from tracker.cli import build_parser

    text = (REPO / "docs" / "cli.md").read_text()
    flags = [f for a in build_parser()._actions for f in a.option_strings if f.startswith("--") and f != "--help"]
    assert flags and all(f"`{f}" in text for f in flags), [f for f in flags if f"`{f}" not in text]


def test_readme_links_resolve_and_it_fits_a_screenful_or_two():
    readme = (REPO / "README.md").read_text()
    assert len(readme.splitlines()) <= 200
    for target in re.findall(r"\]\(([^)#]+)\)", readme):
        if not target.startswith("http"):
            assert (REPO / target).exists(), target
    head = "\n".join(readme.splitlines()[:30])
    assert "non-commercial" in head, "the weights' licence is on the first screen"
