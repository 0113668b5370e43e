"""Shared helpers for the benchmark scripts: timing, rich tables, JSON results."""

from __future__ import annotations

import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

RESULTS = Path(__file__).resolve().parent / "results"
console = Console(width=None if sys.stdout.isatty() else 160)


def time_call(fn, warmup: int, iters: int, budget_s: float = 20.0) -> np.ndarray:
    """Per-call wall times in ms (stops early when `budget_s` is used up, after at least 5 calls)."""
    for _ in range(warmup):
        fn()
    times = []
    start = time.perf_counter()
    for i in range(iters):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1000)
        if i >= 4 and time.perf_counter() - start > budget_s:
            break
    return np.asarray(times)


def machine() -> dict:
    import os

    return {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
            "python": platform.python_version(), "int8_dot_product": int8_dot_product()}


def int8_dot_product() -> str:
    """The CPU's int8 dot-product instructions ('avx512_vnni', 'avx_vnni' or 'none'): int8 models run ~2x
    faster with them and ONNX Runtime's int8 kernels differ without them."""
    try:
        flags = set(Path("/proc/cpuinfo").read_text().split())
    except OSError:
        return "unknown"
    return next((f for f in ("avx512_vnni", "avx_vnni") if f in flags), "none")


def save(name: str, payload: dict) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps({"machine": machine(), **payload}, indent=2))
    console.print(f"wrote {path}")
    return path


def read_scalars(run: Path, prefix: str) -> dict[int, dict[str, float]]:
    """{step: {name: value}} of the TensorBoard scalars of `run/tb` whose tags start with `prefix` (removed from
    the names). Files are read oldest first, so where an interrupted invocation and its resumption both logged a
    step, the resumption's value replaces the other: every step counts once."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    files = sorted((run / "tb").glob("events.out.tfevents.*"), key=lambda p: (p.stat().st_mtime, p.name))
    scalars: dict[int, dict[str, float]] = {}
    for events in files:
        acc = EventAccumulator(str(events), size_guidance={"scalars": 0})
        acc.Reload()
        for tag in acc.Tags()["scalars"]:
            if tag.startswith(prefix):
                for event in acc.Scalars(tag):
                    scalars.setdefault(event.step, {})[tag.removeprefix(prefix)] = float(event.value)
    return dict(sorted(scalars.items()))


def replace_block(path: Path, start: str, end: str, block: str, heading: str = "") -> None:
    """Rewrite the text between the markers `start` and `end` of `path` (the markers included, `block` holds
    them); when they are missing, append `heading` and the block, or fail if no heading is given."""
    text = path.read_text()
    if start not in text or end not in text:
        if not heading:
            raise SystemExit(f"{path}: markers {start} / {end} missing")
        text += f"\n{heading}\n\n{start}\n{end}\n"
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    path.write_text(head + block + tail)
    console.print(f"updated {path}")


def pct(value: float, digits: int = 2) -> str:
    """A share as a percentage; '-' where it is undefined (NME of a method that found no face)."""
    return "-" if value != value else f"{value:.{digits}%}"


def markdown_header(*columns: str, left: int = 1) -> list[str]:
    """A markdown table head: the first `left` columns left-aligned (labels), the rest right-aligned (numbers)."""
    return [markdown_row(*columns), "|" + "---|" * left + "---:|" * (len(columns) - left)]


def markdown_row(*cells: str) -> str:
    return "| " + " | ".join(cells) + " |"


def table(title: str, columns: list[str], rows: list[list]) -> Table:
    t = Table(title=title)
    for c in columns:
        t.add_column(c, justify="right" if c != columns[0] else "left")
    for r in rows:
        t.add_row(*[str(v) for v in r])
    return t
