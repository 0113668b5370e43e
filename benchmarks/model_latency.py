"""Batch-1 latency of every DHLN preset under torch and ONNX Runtime on this CPU.

    python -m benchmarks.model_latency [--threads 2] [--presets paper sht-m cpu-rt] [--bundled]

Prints parameters, GFLOPs (FlopCounterMode: 2 FLOPs per multiply-add) and p50/p95 ms of the whole DHLN (heatmaps
and hallucinated face) and, under ONNX Runtime, of the heatmaps-only graph the tracker runs by default and of the
bundled int8 export where a preset has one; the graphs take turns over several rounds. Writes
benchmarks/results/model_latency.json. Weights are random (the int8 files excepted): latency does not depend on
their values.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

from sht_model import DHLN, PRESETS, build_model, count_flops, count_parameters
from sht_model.config import DHLNConfig
from sht_model.export import export_onnx
from sht_model.weights import read_metadata
from tracker.backends import WEIGHTS

from .common import console, save, table, time_call


def calls(model, threads: int, int8: Path | None, folder: Path) -> dict:
    """The batch-1 calls to time for one DHLN: torch, ONNX Runtime on the whole graph and on the heatmaps-only
    graph, and the int8 file `int8` where given."""
    import onnxruntime as ort

    x = torch.randn(1, 3, model.cfg.input_size, model.cfg.input_size)
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    xn = x.numpy()

    def session(path: Path):
        sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
        return lambda: sess.run(None, {"image": xn})

    def torch_call():
        with torch.inference_mode():
            model(x)

    out = {"torch": torch_call}
    for key, with_face in (("ort", True), ("ort_heatmaps", False)):
        out[key] = session(export_onnx(model, folder / f"{id(model)}-{key}.onnx", with_face=with_face))
    if int8 is not None and int8.exists():
        out["ort_int8"] = session(int8)
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--presets", nargs="+", default=[n for n in PRESETS if n != "test"])
    p.add_argument("--iters", type=int, default=200, help="timed calls of each graph, over all rounds")
    p.add_argument("--rounds", type=int, default=5,
                   help="the graphs take turns this many times, so a slow spell of a shared CPU lands on all of them")
    p.add_argument("--bundled", action="store_true",
                   help="also time the architecture of each preset's bundled float file ('<preset> (bundled)' rows: "
                        "the shipped file's own config, e.g. shtrack 0.1's fusion layout), so a preset compares "
                        "with what ships on the same machine")
    p.add_argument("--name", default="model_latency", help="results file: benchmarks/results/<name>.json")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    models = {}
    for name in args.presets:
        # The bundled int8 export of this preset (tracker/backends.WEIGHTS) goes with the row of the bundled
        # float file's architecture when there is one, else with the preset's.
        int8 = (WEIGHTS[f"{name}-int8"].file if f"{name}-int8" in WEIGHTS else None)
        if args.bundled and name in WEIGHTS and WEIGHTS[name].file.suffix == ".safetensors":
            models[name] = (build_model(name).eval(), None)
            # Random weights in the bundled file's architecture: latency does not depend on their values.
            models[f"{name} (bundled)"] = (DHLN(DHLNConfig.from_json(read_metadata(WEIGHTS[name].file)["config"])).eval(), int8)
        else:
            models[name] = (build_model(name).eval(), int8)
    rows, results = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        timed = {row: calls(model, args.threads, int8, Path(tmp)) for row, (model, int8) in models.items()}
        samples: dict[tuple[str, str], list[float]] = {}
        per_round = max(5, args.iters // args.rounds)
        for _ in range(args.rounds):
            for row, graphs in timed.items():
                for key, call in graphs.items():
                    samples.setdefault((row, key), []).extend(time_call(call, 3, per_round, 20.0 / args.rounds))
    for row, (model, _) in models.items():
        r = results[row] = {"params": count_parameters(model), "gflops": count_flops(model) / 1e9,
                            "fusion": model.cfg.fusion, "threads": args.threads}
        for key in timed[row]:
            t = np.asarray(samples[row, key])
            r[f"{key}_ms_p50"], r[f"{key}_ms_p95"] = float(np.median(t)), float(np.percentile(t, 95))
        r["ort_fps"] = 1000.0 / r["ort_ms_p50"]
        rows.append([row, r["fusion"], f"{r['params'] / 1e6:.2f}M", f"{r['gflops']:.2f}",
                     f"{r['torch_ms_p50']:.1f} / {r['torch_ms_p95']:.1f}",
                     f"{r['ort_ms_p50']:.2f} / {r['ort_ms_p95']:.2f}", f"{r['ort_fps']:.0f}",
                     f"{r['ort_heatmaps_ms_p50']:.2f} / {r['ort_heatmaps_ms_p95']:.2f}",
                     f"{r['ort_int8_ms_p50']:.2f} / {r['ort_int8_ms_p95']:.2f}" if "ort_int8_ms_p50" in r else "-"])
    console.print(table(f"DHLN batch-1 latency, {args.threads} threads, {args.rounds} interleaved rounds",
                        ["preset", "fusion", "params", "GFLOPs", "torch ms p50/p95", "ORT ms p50/p95", "ORT FPS",
                         "ORT heatmaps-only ms p50/p95", "ORT int8 (bundled) ms p50/p95"], rows))
    save(args.name, {"presets": results, "rounds": args.rounds})
    return 0


if __name__ == "__main__":
    sys.exit(main())
