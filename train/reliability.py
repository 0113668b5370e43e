"""Fit the success flag's reliability model (tracker/reliability.py) for one weights file:

    python -m train.reliability --weights tracker/assets/shtrack-cpu-rt.onnx \
        --plot benchmarks/results/reliability_cpu_rt.png     # -> tracker/assets/shtrack-cpu-rt.reliability.json

Faces: the 300W training split (fit and threshold) and the held-out faces (the figures it reports), each at
12-48 px under four conditions: the training degradations (`mixed`), the evaluation degradation (noise sigma 2 +
H.264 CRF 28), an occluder on every face (hand, object, another face's patch) and rotations up to 35 degrees
(with the training degradations). The weights run under ONNX Runtime as the tracker runs them; the fitted model
is least squares on log(NME) with standardised features (a little ridge), and `max_nme` is the largest
threshold at which, on the training split, >= 97% of the faces it passes have NME < 8%.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from .data import NO_AUGMENT, Augment, LabelledFaces, split_records
from .degrade import DegradeConfig
from .readers import read_300w

WIDTHS = (12.0, 16.0, 20.0, 24.0, 32.0, 48.0)
CONDITIONS = {
    "mixed": (NO_AUGMENT, DegradeConfig()),
    "cctv-eval": (NO_AUGMENT, DegradeConfig("cctv-eval")),
    "occluded": (NO_AUGMENT, DegradeConfig(occlude_prob=1.0)),
    "rotated": (Augment(max_angle=35.0, scale_range=(1.0, 1.0), shift=0.0, box_scale_jitter=0.0, flip=False),
                DegradeConfig()),
}
GOOD, BAD = 0.08, 0.15          # NME a usable face stays under; a face whose landmarks are wrong is over


def samples(backend, records, seed: int) -> dict:
    """Every record at every width and condition -> features, measured NME, condition name per sample."""
    from sht_model.heatmap import decode, from_heatmap_coords
    from tracker.reliability import features

    from . import metrics

    cfg = backend.cfg
    feats, errors, names = [], [], []
    for name, (aug, degrade_cfg) in CONDITIONS.items():
        ds = LabelledFaces(records, cfg, aug, degrade_cfg, seed=seed)
        for width in WIDTHS:
            ds.face_width = width
            for start in range(0, len(ds), 64):
                items = [ds[i] for i in range(start, min(len(ds), start + 64))]
                heatmaps, _ = backend.infer(np.stack([it["input"].numpy() for it in items]))
                xy_hm, conf = decode(heatmaps, cfg.heatmap_sigma)
                xy = from_heatmap_coords(xy_hm, cfg.input_size, cfg.feature_size)
                gt = np.stack([it["landmarks"].numpy() for it in items])
                # The face's width in the crop's own pixels, scaled to the source width it stands for.
                feats.append(features(xy, conf, np.full(len(items), width)))
                errors.append(metrics.nme(xy, gt))
                names += [name] * len(items)
    return {"x": np.concatenate(feats), "nme": np.concatenate(errors), "condition": np.array(names)}


def fit(x: np.ndarray, nme: np.ndarray, ridge: float = 1e-2):
    mean, scale = x.mean(0), x.std(0) + 1e-9
    z = (x - mean) / scale
    a = np.concatenate([z, np.ones((len(z), 1))], 1)
    y = np.log(np.maximum(nme, 1e-4))
    w = np.linalg.solve(a.T @ a + ridge * len(a) * np.diag([1.0] * z.shape[1] + [0.0]), a.T @ y)
    return w, mean, scale


def choose_threshold(predicted: np.ndarray, nme: np.ndarray, precision: float = 0.97) -> float:
    """The largest predicted-NME threshold at which >= `precision` of the faces under it have NME < GOOD."""
    order = np.argsort(predicted)
    good = (nme[order] < GOOD).cumsum() / np.arange(1, len(order) + 1)
    ok = np.flatnonzero(good >= precision)
    return float(predicted[order][ok[-1]]) if len(ok) else float(predicted.min())


def report(predicted: np.ndarray, nme: np.ndarray, max_nme: float) -> dict:
    passed = predicted < max_nme
    bad = nme > BAD
    return {"faces": int(len(nme)), "reported": float(passed.mean()),
            "reported_with_nme_under_8pct": float((nme[passed] < GOOD).mean()) if passed.any() else float("nan"),
            "nme_over_15pct_flagged": float((~passed[bad]).mean()) if bad.any() else float("nan"),
            "faces_over_15pct": int(bad.sum())}


def plot(predicted: np.ndarray, nme: np.ndarray, max_nme: float, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    edges = np.quantile(predicted, np.linspace(0, 1, 21))
    which = np.clip(np.searchsorted(edges, predicted, side="right") - 1, 0, 19)
    px = [predicted[which == b].mean() for b in range(20) if (which == b).any()]
    py = [nme[which == b].mean() for b in range(20) if (which == b).any()]
    fig, ax = plt.subplots(figsize=(5, 4.5))
    ax.scatter(predicted, nme, s=2, alpha=0.15, color="grey", label="faces")
    ax.plot(px, py, "o-", color="C0", label="mean per predicted-NME bin")
    top = float(np.quantile(np.concatenate([predicted, nme]), 0.99))
    ax.plot([0, top], [0, top], "k--", lw=1, label="perfect calibration")
    ax.axvline(max_nme, color="C3", lw=1, label=f"success threshold {max_nme:.3f}")
    ax.set_xlim(0, top)
    ax.set_ylim(0, top)
    ax.set_xlabel("predicted NME")
    ax.set_ylabel("measured NME (held-out 300W)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


def main(argv: list[str] | None = None) -> int:
    from tracker.backends import load_backend
    from tracker.reliability import FEATURES, ReliabilityModel, reliability_path

    p = argparse.ArgumentParser(prog="python -m train.reliability", description=__doc__.split("\n")[0])
    p.add_argument("--weights", type=Path, required=True, help="the weights the tracker runs (.onnx or .safetensors)")
    p.add_argument("--data", type=Path, default=Path("../shared/data/300w_train"))
    p.add_argument("--out", type=Path, help="default: beside the weights, <stem>.reliability.json")
    p.add_argument("--plot", type=Path, help="the reliability plot (PNG)")
    p.add_argument("--threads", type=int, default=2, choices=range(1, 17), metavar="N")
    args = p.parse_args(argv)
    backend = load_backend(args.weights, "onnxruntime", threads=args.threads)
    train, held_out = split_records(read_300w(args.data))
    fit_set, test_set = samples(backend, train, seed=7), samples(backend, held_out, seed=1234)
    w, mean, scale = fit(fit_set["x"], fit_set["nme"])
    model = ReliabilityModel(tuple(map(float, w)), tuple(map(float, mean)), tuple(map(float, scale)), 1.0)

    def predicted(s):
        z = (s["x"] - mean) / scale
        return np.exp(z @ w[:-1] + w[-1])
    max_nme = choose_threshold(predicted(fit_set), fit_set["nme"])
    model = ReliabilityModel(model.weights, model.mean, model.scale, max_nme)
    held = {"all": report(predicted(test_set), test_set["nme"], max_nme)}
    for name in CONDITIONS:
        sel = test_set["condition"] == name
        held[name] = report(predicted(test_set)[sel], test_set["nme"][sel], max_nme)
    out = args.out or reliability_path(args.weights)
    out.write_text(model.to_json({"weights_file": args.weights.name, "fitted_on": f"{len(train)} training-split faces "
                                  f"x {len(WIDTHS)} widths x {len(CONDITIONS)} conditions", "held_out": held}) + "\n")
    if args.plot:
        plot(predicted(test_set), test_set["nme"], max_nme, args.plot)
    print(json.dumps({"out": str(out), "max_nme": max_nme, "features": dict(zip(FEATURES, np.round(w[:-1], 3).tolist())),
                      "held_out": held}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
