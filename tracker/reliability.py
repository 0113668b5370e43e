"""A success flag that means the landmarks are usable: each face's predicted error, from what the model's output
and the landmarks' shape say, against a threshold chosen on held-out data.

Features of one face (all from one frame's landmarks, their heatmap peaks and the face's width):
- the heatmap peaks (mean, lowest, 10th percentile, spread; the jaw's and the inner face's means): the model's
  own doubt;
- how far the 68 points are from a face's shape: the RMS residual after a similarity fit to the mean face (its
  frontal projection), over all points and over the jaw, in inter-ocular units; a jaw drawn over an ear or a
  mouth pulled onto a hand is an implausible shape even where the peaks are confident;
- log of the face width: small faces are less precise.
A linear model of log(NME) on them (`ReliabilityModel`, fitted by `python -m train.reliability` on the training
split's faces under the degradations and occluders of training) gives the predicted NME; a face is `success=1`
only while it is under `max_nme` (chosen on the held-out faces: of the faces reported, >= 97% have NME < 8%).
The coefficients travel beside the weights: `<weights>.reliability.json`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

JAW = slice(0, 17)
INNER = slice(17, 68)
FEATURES = ("conf_mean", "conf_min", "conf_p10", "conf_std", "conf_jaw", "conf_inner", "shape_rms", "jaw_rms",
            "log_width")
FORMAT = "shtrack-reliability/1"


def _mean_shape() -> np.ndarray:
    from .pose import mean_face

    return mean_face()[:, :2]


_SHAPE: np.ndarray | None = None


def features(xy: np.ndarray, confidence: np.ndarray, widths: np.ndarray) -> np.ndarray:
    """(n, 68, 2) landmarks, (n, 68) peaks, (n,) face widths (px) -> (n, len(FEATURES))."""
    global _SHAPE
    if _SHAPE is None:
        _SHAPE = _mean_shape()
    n = len(xy)
    out = np.zeros((n, len(FEATURES)), np.float64)
    if n == 0:
        return out
    c = np.asarray(confidence, np.float64)
    out[:, 0], out[:, 1] = c.mean(1), c.min(1)
    out[:, 2], out[:, 3] = np.percentile(c, 10, axis=1), c.std(1)
    out[:, 4], out[:, 5] = c[:, JAW].mean(1), c[:, INNER].mean(1)
    target = _SHAPE - _SHAPE.mean(0)
    iod = np.linalg.norm(target[45] - target[36])
    for i, points in enumerate(np.asarray(xy, np.float64)):
        if not np.isfinite(points).all():
            out[i, 6:8] = 10.0
            continue
        p = points - points.mean(0)
        # Similarity fit of the points onto the mean shape (scale and rotation, Umeyama / Procrustes).
        u, s, vt = np.linalg.svd(p.T @ target)
        r = u @ vt
        scale = s.sum() / max((p ** 2).sum(), 1e-9)
        residual = np.linalg.norm(scale * p @ r - target, axis=1) / iod
        out[i, 6] = np.sqrt((residual ** 2).mean())
        out[i, 7] = np.sqrt((residual[JAW] ** 2).mean())
    out[:, 8] = np.log(np.maximum(np.asarray(widths, np.float64), 1.0))
    return out


@dataclass(frozen=True)
class ReliabilityModel:
    weights: tuple[float, ...]        # one per FEATURES, then the intercept
    mean: tuple[float, ...]           # feature standardisation
    scale: tuple[float, ...]
    max_nme: float                    # success=1 only below this predicted NME

    def predict(self, xy: np.ndarray, confidence: np.ndarray, widths: np.ndarray) -> np.ndarray:
        """(n,) predicted NME (inter-ocular)."""
        f = (features(xy, confidence, widths) - np.array(self.mean)) / np.array(self.scale)
        w = np.array(self.weights)
        return np.exp(f @ w[:-1] + w[-1])

    def reliable(self, xy, confidence, widths) -> np.ndarray:
        return self.predict(xy, confidence, widths) < self.max_nme

    def to_json(self, extra: dict | None = None) -> str:
        return json.dumps({"format": FORMAT, "features": list(FEATURES), "weights": list(self.weights),
                           "mean": list(self.mean), "scale": list(self.scale), "max_nme": self.max_nme,
                           **(extra or {})}, indent=1)

    @classmethod
    def load(cls, path: Path) -> "ReliabilityModel":
        from sht_model.errors import WeightsError

        try:
            raw = json.loads(Path(path).read_text())
            if raw.get("format") != FORMAT or raw.get("features") != list(FEATURES):
                raise ValueError("not this version's reliability file")
            k = len(FEATURES)
            weights, mean, scale = (tuple(float(v) for v in raw[key]) for key in ("weights", "mean", "scale"))
            if len(weights) != k + 1 or len(mean) != k or len(scale) != k or not all(s > 0 for s in scale):
                raise ValueError("wrong number of coefficients")
            max_nme = float(raw["max_nme"])
            if not 0 < max_nme < 1:
                raise ValueError(f"max_nme {max_nme} out of (0, 1)")
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise WeightsError(f"{path}: not a usable reliability file ({str(exc).splitlines()[0][:120]})") from None
        return cls(weights, mean, scale, max_nme)


def reliability_path(weights: Path) -> Path:
    """Where a weights file's reliability model lives: beside it, `<stem>.reliability.json`."""
    return Path(weights).with_name(Path(weights).stem.removesuffix("-int8") + ".reliability.json")


def for_backend(backend) -> ReliabilityModel | None:
    """The reliability model beside the backend's weights file, or None (no file: success is the confidence rule
    alone, as before)."""
    weights = getattr(backend, "weights", None)
    if weights is None:
        return None
    path = reliability_path(Path(weights))
    return ReliabilityModel.load(path) if path.is_file() else None
