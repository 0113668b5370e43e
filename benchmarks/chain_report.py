"""Where a run of train/make_default_weights.sh stands, read from its folder: the figures the model card quotes.

    python -m benchmarks.chain_report --runs runs/chain-3

For every training run in the folder (each subfolder with a `tb/` log: cpu-rt-dhln, cpu-rt-base, cpu-rt-fptn,
ablation/<arm>, ...): the step its checkpoint reached and that checkpoint's clock (training seconds, summed
over resumed invocations), and the held-out 300W NME at every evaluation (the `val_nme/*` TensorBoard scalars;
where an interrupted invocation and its resumption both logged a step, the later one counts); "best" is the
evaluation with the lowest mean over the widths, the one training keeps as best.safetensors. From
`chain.log`: each chain step's wall time, summed over its invocations, and whether it finished.
Writes benchmarks/results/chain_<folder name>.json. Reads only: safe while the chain runs.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import torch

from .common import console, read_scalars, save, table

LOG_LINE = re.compile(r"^(\S+) (\S+) (\d+) s (finished|interrupted)$")


def read_chain_log(path: Path) -> dict[str, dict]:
    """Each step of `chain.log` (in the order first seen): total seconds, invocations, finished or not."""
    steps: dict[str, dict] = {}
    if not path.exists():
        return steps
    for number, line in enumerate(path.read_text().splitlines(), 1):
        match = LOG_LINE.match(line.strip())
        if match is None:
            raise SystemExit(f"{path}:{number}: not a chain.log line: {line!r}")
        _, name, seconds, outcome = match.groups()
        step = steps.setdefault(name, {"seconds": 0, "invocations": 0, "finished": False})
        step["seconds"] += int(seconds)
        step["invocations"] += 1
        step["finished"] = step["finished"] or outcome == "finished"
    return steps


def read_evaluations(run: Path) -> dict[int, dict[str, float]]:
    """{step: {"16px": nme, ...}} from the run's TensorBoard files (a resumed invocation's value for a step
    replaces the interrupted one's)."""
    return read_scalars(run, "val_nme/")


def read_run(run: Path) -> dict:
    """The checkpoint's step and clock from `state.pt`, or from last.safetensors' metadata where a finished
    step's folder kept only its weights (None where neither is there); the evaluations from `tb/`."""
    step = seconds = None
    if (run / "state.pt").exists():
        state = torch.load(run / "state.pt", map_location="cpu", weights_only=True)
        step, seconds = state["step"], state.get("seconds")
    elif (run / "last.safetensors").exists():
        from sht_model.weights import read_extra

        extra = read_extra(run / "last.safetensors")
        step, seconds = extra.get("step"), extra.get("seconds")
    return {"step": None if step is None else int(step), "seconds": None if seconds is None else float(seconds),
            "evaluations": read_evaluations(run)}


def report(runs: Path) -> dict:
    found = sorted(p.parent for p in runs.rglob("tb") if p.is_dir())
    return {"runs": str(runs), "chain_log": read_chain_log(runs / "chain.log"),
            "training_runs": {str(p.relative_to(runs)): read_run(p) for p in found}}


def nme_text(scores: dict[str, float]) -> str:
    return " / ".join(f"{scores[w]:.2%}" for w in sorted(scores, key=lambda w: float(w.removesuffix("px"))))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.chain_report", description=__doc__.split("\n")[0])
    p.add_argument("--runs", type=Path, default=Path("runs/chain"), help="the chain's RUNS folder")
    args = p.parse_args(argv)
    if not args.runs.is_dir():
        raise SystemExit(f"{args.runs}: no such folder (the chain's RUNS)")
    result = report(args.runs)

    rows = [[name, "yes" if s["finished"] else "no", s["invocations"], f"{s['seconds']:,}"]
            for name, s in result["chain_log"].items()]
    console.print(table("chain.log: wall time per step", ["step", "finished", "invocations", "seconds"], rows))
    rows = []
    for name, run in result["training_runs"].items():
        evaluations = run["evaluations"]
        best = min(evaluations.items(), key=lambda kv: sum(kv[1].values()) / len(kv[1]), default=None)
        last = max(evaluations.items(), default=None)
        rows.append([name, "-" if run["step"] is None else run["step"],
                     "-" if run["seconds"] is None else f"{run['seconds']:,.0f}",
                     f"{nme_text(last[1])} ({last[0]})" if last else "-",
                     f"{nme_text(best[1])} ({best[0]})" if best else "-"])
    console.print(table("training runs: checkpoint and held-out 300W NME (16 / 24 / 32 / 64 px, at step)",
                        ["run", "checkpoint step", "clock s", "last evaluation", "best (mean of the widths)"], rows))
    for name, run in result["training_runs"].items():
        for step, scores in run["evaluations"].items():
            console.print(f"{name} step {step}: {nme_text(scores)}")
    save(f"chain_{args.runs.resolve().name}", result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
