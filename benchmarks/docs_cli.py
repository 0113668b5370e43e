"""The flag reference of docs/cli.md, generated from `shtrack`'s own parser (no flag is described twice).

    python -m benchmarks.docs_cli        # rewrite the block between the flags markers of docs/cli.md
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tracker.cli import ExitCode, build_parser

from .common import replace_block

DOC = Path(__file__).resolve().parents[1] / "docs" / "cli.md"
START, END = "<!-- flags:start -->", "<!-- flags:end -->"


def render() -> str:
    lines = [START, "The same text as `shtrack --help`; `python -m benchmarks.docs_cli` writes it "
             "(tests/test_docs.py fails when it is stale)."]
    for group in build_parser()._action_groups:
        actions = [a for a in group._group_actions if a.option_strings and not isinstance(a, argparse._HelpAction)]
        if not actions:
            continue
        lines += ["", f"### {group.title}", "", "| flag | default | meaning |", "|---|---|---|"]
        for a in actions:
            takes = a.nargs != 0
            meta = f" {{{','.join(a.choices)}}}" if a.choices else (f" {a.metavar or a.dest.upper()}" if takes else "")
            default = "required" if a.required else (
                "" if a.default is None or a.default is False or a.default == argparse.SUPPRESS else f"`{a.default}`")
            text = (a.help or "").replace("|", "\\|")
            lines.append(f"| `{', '.join(a.option_strings)}{meta}` | {default} | {text} |")
    lines += ["", "### Exit codes", "", "| code | name (`tracker.cli.ExitCode`) |", "|---|---|",
              *(f"| {int(c)} | `{c.name}` |" for c in ExitCode), END]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    replace_block(DOC, START, END, render())
    return 0


if __name__ == "__main__":
    sys.exit(main())
