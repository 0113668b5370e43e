"""Landmark and image metrics.

NME normalisations (68-point scheme, 0-based): inter-ocular = outer eye corners 36 and 45; inter-pupil =
eye-centre distance (means of 36-41 and 42-47); box = sqrt(w*h) of the ground-truth box; diagonal = its
diagonal; width = its width. AUC/FR at a threshold from the cumulative error distribution (CED).
"""

from __future__ import annotations

import numpy as np

LEFT_EYE, RIGHT_EYE = slice(36, 42), slice(42, 48)


def normaliser(gt: np.ndarray, kind: str = "inter-ocular") -> np.ndarray:
    """gt: (N, 68, 2) -> (N,)"""
    gt = np.asarray(gt, dtype=np.float64)
    if kind == "inter-ocular":
        return np.linalg.norm(gt[:, 36] - gt[:, 45], axis=-1)
    if kind == "inter-pupil":
        return np.linalg.norm(gt[:, LEFT_EYE].mean(1) - gt[:, RIGHT_EYE].mean(1), axis=-1)
    w = np.ptp(gt[..., 0], axis=1)
    h = np.ptp(gt[..., 1], axis=1)
    if kind == "box":
        return np.sqrt(w * h)
    if kind == "diagonal":
        return np.sqrt(w ** 2 + h ** 2)
    if kind == "width":
        return w
    raise ValueError(f"unknown normalisation {kind!r}")


def nme(pred: np.ndarray, gt: np.ndarray, kind: str = "inter-ocular") -> np.ndarray:
    """Per-face normalised mean error, (N,)."""
    err = np.linalg.norm(np.asarray(pred, np.float64) - np.asarray(gt, np.float64), axis=-1).mean(-1)
    return err / np.maximum(normaliser(gt, kind), 1e-9)


def ced(errors: np.ndarray, threshold: float, steps: int = 1000) -> tuple[np.ndarray, np.ndarray]:
    xs = np.linspace(0, threshold, steps)
    errors = np.asarray(errors)
    ys = (errors[None, :] <= xs[:, None]).mean(1) if errors.size else np.zeros_like(xs)
    return xs, ys


def auc_fr(errors: np.ndarray, threshold: float) -> tuple[float, float]:
    """Area under the CED up to `threshold` (normalised to [0, 1]) and the failure rate (error > threshold)."""
    xs, ys = ced(errors, threshold)
    auc = float(np.trapezoid(ys, xs) / threshold)
    fr = float((np.asarray(errors) > threshold).mean()) if np.size(errors) else float("nan")
    return auc, fr


def summary(errors: np.ndarray, threshold: float = 0.08) -> dict:
    auc, fr = auc_fr(errors, threshold)
    return {"nme": float(np.mean(errors)) if np.size(errors) else float("nan"), f"auc@{threshold}": auc,
            f"fr@{threshold}": fr, "n": int(np.size(errors))}


def plot_ced(curves: dict[str, np.ndarray], threshold: float, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 4))
    for name, errors in curves.items():
        xs, ys = ced(errors, threshold)
        ax.plot(xs, ys, label=name)
    ax.set_xlabel("NME (inter-ocular)")
    ax.set_ylabel("fraction of faces")
    ax.set_xlim(0, threshold)
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _luma(img: np.ndarray) -> np.ndarray:
    """RGB in [0, 255] -> Y (ITU-R BT.601), as SR papers measure."""
    img = np.asarray(img, np.float64)
    return 16.0 + (65.481 * img[..., 0] + 128.553 * img[..., 1] + 24.966 * img[..., 2]) / 255.0


def psnr_y(pred: np.ndarray, gt: np.ndarray) -> float:
    mse = np.mean((_luma(pred) - _luma(gt)) ** 2)
    return float("inf") if mse == 0 else float(10 * np.log10(255.0 ** 2 / mse))


def ssim_y(pred: np.ndarray, gt: np.ndarray) -> float:
    from skimage.metrics import structural_similarity

    return float(structural_similarity(_luma(pred), _luma(gt), data_range=255.0, gaussian_weights=True,
                                       sigma=1.5, use_sample_covariance=False))
