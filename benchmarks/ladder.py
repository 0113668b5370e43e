"""The face-size ladder's curve: for each model, what a face costs and how accurate it is at each width.

    python -m benchmarks.ladder --weights cpu-small=tracker/assets/shtrack-cpu-small.onnx \
        cpu-rt=tracker/assets/shtrack-cpu-rt.onnx [--no-timing]

1. ms per face under ONNX Runtime, one intra-op thread, batch 1 and batch 16 (models interleaved over rounds, so
   the machine's drift hits them alike; pause other work first, or pass --no-timing);
2. NME / FR@0.08 on the held-out 300W faces degraded to 12, 16, 20, 24, 32, 48 and 64 px (train/data.py's split,
   the `mixed` protocol at a fixed width, fixed seed: the model card's protocol), and the same faces under the
   evaluation degradation (`cctv-eval`: noise sigma 2 + H.264 CRF 28);
3. the boundary between consecutive models: the smallest width from which the larger model is more accurate
   than the smaller one by more than `--margin` (relative), with the ladder's routing per width (hysteresis
   aside) under tracker.backends.LADDER's bounds.
Writes benchmarks/results/ladder.json.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from train.common import score_faces
from train.data import split_records
from train.readers import read_300w

from .common import console, save, table, time_call

WIDTHS = (12.0, 16.0, 20.0, 24.0, 32.0, 48.0, 64.0)


def timing(paths: dict[str, Path], rounds: int = 5, iters: int = 60) -> dict:
    """ms per face, one thread, batch 1 and 16; rounds interleave the models."""
    import onnxruntime as ort

    sessions = {}
    for name, path in paths.items():
        so = ort.SessionOptions()
        so.intra_op_num_threads, so.inter_op_num_threads = 1, 1
        so.add_session_config_entry("session.intra_op.allow_spinning", "0")
        sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
        size = sess.get_inputs()[0].shape[-1]
        sessions[name] = (sess, sess.get_inputs()[0].name, size)
    times = {name: {1: [], 16: []} for name in paths}
    for _ in range(rounds):
        for name, (sess, input_name, size) in sessions.items():
            for batch in (1, 16):
                x = np.random.default_rng(0).normal(0, 1, (batch, 3, size, size)).astype(np.float32)
                ms = time_call(lambda: sess.run(None, {input_name: x}), 5, iters // (4 if batch == 16 else 1), 10.0)
                times[name][batch].extend((ms / batch).tolist())
    return {name: {f"batch{b}_ms_per_face": float(np.median(v)) for b, v in t.items()} for name, t in times.items()}


def accuracy(paths: dict[str, Path], data: Path, widths) -> dict:
    from tracker.backends import load_backend
    from train.degrade import DegradeConfig

    _, held_out = split_records(read_300w(data))
    out = {}
    for name, path in paths.items():
        backend = load_backend(path, "onnxruntime", threads=2)
        out[name] = {"clean": score_faces(lambda x: backend.infer(x.numpy())[0], backend.cfg, held_out, widths)}
        out[name]["degraded"] = score_faces(lambda x: backend.infer(x.numpy())[0], backend.cfg, held_out, widths,
                                            degrade_cfg=DegradeConfig("cctv-eval"))
    return {"faces": len(held_out), "models": out}


def boundaries(models: dict, names: list[str], margin: float) -> dict:
    """For each pair of consecutive models, the smallest width (px) from which the larger beats the smaller by
    more than `margin` relative NME, and stays ahead at every larger width."""
    out = {}
    for small, large in zip(names, names[1:]):
        a, b = models[small]["clean"], models[large]["clean"]
        widths = [w for w in a if w in b]
        ahead = [b[w]["nme"] < a[w]["nme"] * (1 - margin) for w in widths]
        first = next((i for i in range(len(widths)) if all(ahead[i:])), None)
        out[f"{small}|{large}"] = float(widths[first].rstrip("px")) if first is not None else None
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.ladder", description=__doc__.split("\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    repo = Path(__file__).resolve().parents[1]
    p.add_argument("--weights", nargs="+", required=True, metavar="NAME=FILE.onnx",
                   help="the ladder's models, smallest first (ONNX files: what the tracker runs)")
    p.add_argument("--data", type=Path, default=repo.parent / "shared" / "data" / "300w_train")
    p.add_argument("--widths", type=float, nargs="+", default=list(WIDTHS))
    p.add_argument("--margin", type=float, default=0.02, help="relative NME the larger model must win by")
    p.add_argument("--no-timing", action="store_true", help="accuracy only (timing needs a quiet machine)")
    p.add_argument("--timing-only", action="store_true", help="ms per face only")
    p.add_argument("--name", default="ladder")
    args = p.parse_args(argv)
    paths = dict(w.split("=", 1) for w in args.weights)
    paths = {k: Path(v) for k, v in paths.items()}
    from tracker.backends import LADDER

    if args.timing_only:
        result = {"timing": timing(paths)}
        save(args.name, result)
        console.print(result)
        return 0
    result = {"widths": args.widths, **accuracy(paths, args.data, args.widths)}
    result["boundaries"] = boundaries(result["models"], list(paths), args.margin)
    bounds = [(tag, below) for tag, below in LADDER]
    result["routing"] = {f"{int(w)}px": next(tag for tag, below in bounds if w < below) for w in args.widths}
    if not args.no_timing:
        result["timing"] = timing(paths)
    save(args.name, result)
    rows = []
    for name, r in result["models"].items():
        t = result.get("timing", {}).get(name, {})
        rows.append([name, f"{t.get('batch1_ms_per_face', float('nan')):.2f}",
                     f"{t.get('batch16_ms_per_face', float('nan')):.2f}",
                     *(f"{r['clean'][w]['nme']:.2%} / {r['degraded'][w]['nme']:.2%}" for w in r["clean"])])
    console.print(table(f"ladder: held-out 300W ({result['faces']} faces), NME clean / degraded (noise 2 + H.264 "
                        "CRF 28)", ["model", "ms/face b1", "ms/face b16", *result["models"][next(iter(paths))]["clean"]],
                        rows))
    console.print(f"boundaries: {result['boundaries']}; routing with LADDER {bounds}: {result['routing']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
