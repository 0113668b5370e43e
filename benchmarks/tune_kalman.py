"""Tune the Kalman noise levels on clips against the teacher's landmarks (training clips only, never held-out ones).

    python -m benchmarks.tune_kalman [--clips driving_d10 source_s20] [--width 24]

Grid over measurement / process noise (fractions of the face size); reports NME and jitter for each pair and
the pair with the lowest NME + jitter. The defaults in tracker/smoothing.py come from this run.
"""

from __future__ import annotations

import argparse
import itertools
import sys
from pathlib import Path

from .common import console, save, table
from .lowres import load_clip, score, shrink


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    repo = Path(__file__).resolve().parents[1]
    p.add_argument("--videos", type=Path, default=repo.parent / "shared/data/videos")
    p.add_argument("--labels", type=Path, default=repo / "runs/labels", help="teacher labels (python -m train.label)")
    p.add_argument("--clips", nargs="+", default=["driving_d10", "source_s20"])
    p.add_argument("--width", type=float, default=24)
    p.add_argument("--measurement", nargs="+", type=float, default=[0.01, 0.02, 0.04])
    p.add_argument("--process", nargs="+", type=float, default=[0.005, 0.01, 0.02])
    args = p.parse_args(argv)
    from tracker.pipeline import track
    from tracker.smoothing import KalmanParams
    from tracker.sources import frames_from_arrays

    from .lowres import pick

    clips = {c: shrink(load_clip(args.videos, args.labels, c, 1), args.width) for c in args.clips}
    rows, results = [], {}
    grid = [("none", None)] + [("kalman", KalmanParams(m, q)) for m, q in itertools.product(args.measurement, args.process)]
    for mode, params in grid:
        preds, gts = [], []
        for frames in clips.values():
            kw = {"kalman": params} if params else {}
            for result, (_, gt) in zip(track(frames_from_arrays([f for f, _ in frames]), backend="onnxruntime",
                                             threads=2, smooth=mode, min_face=0.75 * args.width, **kw), frames):
                preds.append(pick(result.faces.xy, result.faces.success, gt))
                gts.append(gt)
        s = score(preds, gts)
        s.pop("errors")
        key = "none" if params is None else f"m={params.measurement} q={params.process}"
        results[key] = s
        rows.append([key, f"{s['nme']:.2%}", f"{s['jitter']:.4f}", f"{s['found']:.1%}"])
    best = min((k for k in results if k != "none"), key=lambda k: results[k]["nme"] + results[k]["jitter"])
    console.print(table(f"Kalman noise at {args.width:.0f} px on {', '.join(args.clips)}", ["setting", "NME", "jitter", "found"], rows))
    console.print(f"best (lowest NME + jitter): {best}")
    save("tune_kalman", {"width": args.width, "clips": args.clips, "results": results, "best": best})
    return 0


if __name__ == "__main__":
    sys.exit(main())
