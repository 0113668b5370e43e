"""The 3D mean face behind the head-pose columns: `python -m train.mean_face` writes tracker/assets/mean_face_68.csv.

Rigid factorisation (Tomasi-Kanade) of the labelled training faces' 68 points, under a scaled-orthographic
camera: each face centred and scaled to unit RMS, the 2F x 68 matrix of all x and y rows is cut to rank 3 by SVD
(motion x shape), and the affine ambiguity is resolved by the metric constraints (each face's two camera rows
orthogonal and of equal length). What the faces' expressions and identities add is the residual of that rank-3
fit; averaged over 1,816 faces in every pose it leaves the mean shape. The shape is then put in the head's own
frame (x from the right eye's outer corner to the left's, y down towards the chin, z away from the viewer;
origin at the points' centroid), the reflection the factorisation cannot tell apart from the face is resolved
so the nose tip stands out towards the viewer, and it is scaled so the outer eye corners (points 36 and 45) are
90 mm apart (a typical adult's).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from .data import split_records
from .readers import read_300w

OUT = Path(__file__).resolve().parents[1] / "tracker" / "assets" / "mean_face_68.csv"
EYE_CORNERS_MM = 90.0


def factorise(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(F, 68, 2) landmarks -> (68, 3) shape up to a rotation, and the singular values of the measurement matrix."""
    p = points - points.mean(1, keepdims=True)
    p = p / np.sqrt((p ** 2).sum((1, 2), keepdims=True) / p.shape[1])
    w = np.empty((2 * len(p), p.shape[1]))
    w[0::2], w[1::2] = p[:, :, 0], p[:, :, 1]
    u, s, vt = np.linalg.svd(w, full_matrices=False)
    motion, shape = u[:, :3] * np.sqrt(s[:3]), np.sqrt(s[:3])[:, None] * vt[:3]

    def row(a, b):     # the coefficients of a^T L b in the 6 unknowns of a symmetric L
        return np.array([a[0] * b[0], a[0] * b[1] + a[1] * b[0], a[0] * b[2] + a[2] * b[0], a[1] * b[1],
                         a[1] * b[2] + a[2] * b[1], a[2] * b[2]])
    mx, my = motion[0::2], motion[1::2]
    rows = [row(a, a) - row(b, b) for a, b in zip(mx, my)] + [row(a, b) for a, b in zip(mx, my)]
    rows.append(np.mean([row(a, a) for a in mx], 0))
    rhs = np.zeros(len(rows))
    rhs[-1] = 1.0
    l6 = np.linalg.lstsq(np.array(rows), rhs, rcond=None)[0]
    L = np.array([[l6[0], l6[1], l6[2]], [l6[1], l6[3], l6[4]], [l6[2], l6[4], l6[5]]])
    vals, vecs = np.linalg.eigh(L)
    q = vecs @ np.diag(np.sqrt(np.clip(vals, 1e-12, None)))
    return (np.linalg.inv(q) @ shape).T, s


def head_frame(shape: np.ndarray) -> np.ndarray:
    """(68, 3) -> the same shape in the head's frame and scale (module docstring)."""
    x = shape[45] - shape[36]
    x /= np.linalg.norm(x)
    down = shape[8] - (shape[36] + shape[45]) / 2
    y = down - (down @ x) * x
    y /= np.linalg.norm(y)
    z = np.cross(x, y)
    out = (shape - shape.mean(0)) @ np.stack([x, y, z], 1)
    eyes_z = (out[36, 2] + out[45, 2]) / 2
    if out[30, 2] > eyes_z:              # the nose tip behind the eyes: the mirror image; take the face
        out[:, 2] = -out[:, 2]
    return out * EYE_CORNERS_MM / np.linalg.norm(out[45] - out[36])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m train.mean_face", description=__doc__.split("\n")[0])
    p.add_argument("--data", type=Path, default=Path("../shared/data/300w_train"))
    p.add_argument("--out", type=Path, default=OUT)
    args = p.parse_args(argv)
    train, _ = split_records(read_300w(args.data))
    shape, s = factorise(np.stack([r.landmarks for r in train]).astype(np.float64))
    face = head_frame(shape)
    lines = ["# 3D mean face of the 68 iBUG points, mm, head frame (x: right eye to left eye, y: down, z: away from the "
             f"viewer); python -m train.mean_face on {len(train)} training faces of 300W (non-commercial research use)",
             "x,y,z", *(f"{a:.3f},{b:.3f},{c:.3f}" for a, b, c in face)]
    args.out.write_text("\n".join(lines) + "\n")
    print(f"{args.out}: rank-3 share of the measurements {float((s[:3] ** 2).sum() / (s ** 2).sum()):.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
