"""Batch-1 latency of every DHLN preset under torch and ONNX Runtime on this CPU.

    python -m benchmarks.model_latency [--threads 2] [--presets paper sht-m cpu-rt]

Prints parameters, GFLOPs (FlopCounterMode: 2 FLOPs per multiply-add) and p50/p95 ms of the whole DHLN (heatmaps
and hallucinated face) and, under ONNX Runtime, of the heatmaps-only graph the tracker runs by default and of the
bundled int8 export where a preset has one; writes benchmarks/results/model_latency.json. Weights are random
(the int8 files excepted): latency does not depend on their values.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

from sht_model import PRESETS, build_model, count_flops, count_parameters
from sht_model.export import export_onnx
from tracker.backends import BUNDLED

from .common import console, save, table, time_call


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--presets", nargs="+", default=[n for n in PRESETS if n != "test"])
    p.add_argument("--iters", type=int, default=200)
    args = p.parse_args(argv)
    import onnxruntime as ort

    torch.set_num_threads(args.threads)
    rows, results = [], {}
    for name in args.presets:
        model = build_model(name).eval()
        cfg = model.cfg
        x = torch.randn(1, 3, cfg.input_size, cfg.input_size)
        with torch.inference_mode():
            t_torch = time_call(lambda: model(x), 3, args.iters)
        so = ort.SessionOptions()
        so.intra_op_num_threads = args.threads
        so.inter_op_num_threads = 1
        xn = x.numpy()
        t_ort = {}
        with tempfile.TemporaryDirectory() as tmp:
            for with_face in (True, False):
                path = export_onnx(model, Path(tmp) / f"{name}-{with_face}.onnx", with_face=with_face)
                sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
                t_ort[with_face] = time_call(lambda: sess.run(None, {"image": xn}), 10, args.iters)
            # The bundled int8 export of this preset, if there is one (tracker/backends.BUNDLED).
            int8 = BUNDLED.get(f"{name}-int8")
            if int8 is not None and int8.exists():
                sess = ort.InferenceSession(str(int8), so, providers=["CPUExecutionProvider"])
                t_ort["int8"] = time_call(lambda: sess.run(None, {"image": xn}), 10, args.iters)
        t_heatmaps, t_int8, t_ort = t_ort[False], t_ort.get("int8"), t_ort[True]
        params, flops = count_parameters(model), count_flops(model)
        results[name] = {"params": params, "gflops": flops / 1e9,
                         "torch_ms_p50": float(np.median(t_torch)), "torch_ms_p95": float(np.percentile(t_torch, 95)),
                         "ort_ms_p50": float(np.median(t_ort)), "ort_ms_p95": float(np.percentile(t_ort, 95)),
                         "ort_fps": 1000.0 / float(np.median(t_ort)),
                         "ort_heatmaps_ms_p50": float(np.median(t_heatmaps)),
                         "ort_heatmaps_ms_p95": float(np.percentile(t_heatmaps, 95)), "threads": args.threads}
        if t_int8 is not None:
            results[name].update(ort_int8_ms_p50=float(np.median(t_int8)), ort_int8_ms_p95=float(np.percentile(t_int8, 95)))
        r = results[name]
        rows.append([name, f"{params / 1e6:.2f}M", f"{r['gflops']:.2f}", f"{r['torch_ms_p50']:.1f} / {r['torch_ms_p95']:.1f}",
                     f"{r['ort_ms_p50']:.2f} / {r['ort_ms_p95']:.2f}", f"{r['ort_fps']:.0f}",
                     f"{r['ort_heatmaps_ms_p50']:.2f} / {r['ort_heatmaps_ms_p95']:.2f}",
                     f"{r['ort_int8_ms_p50']:.2f} / {r['ort_int8_ms_p95']:.2f}" if "ort_int8_ms_p50" in r else "-"])
    console.print(table(f"DHLN batch-1 latency, {args.threads} threads",
                        ["preset", "params", "GFLOPs", "torch ms p50/p95", "ORT ms p50/p95", "ORT FPS",
                         "ORT heatmaps-only ms p50/p95", "ORT int8 (bundled) ms p50/p95"], rows))
    save("model_latency", {"presets": results})
    return 0


if __name__ == "__main__":
    sys.exit(main())
