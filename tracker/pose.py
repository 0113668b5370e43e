"""Head pose from the 68 landmarks, in OpenFace's columns: pose_Tx, pose_Ty, pose_Tz (mm, the head's centre in
camera coordinates: x right, y down, z forward) and pose_Rx, pose_Ry, pose_Rz (radians, the head's rotation as
Euler angles with R = Rx @ Ry @ Rz; 0, 0, 0 faces the camera).

The 3D model is the project's own mean face (tracker/assets/mean_face_68.csv, made by `python -m train.mean_face`
by rigid factorisation of the labelled training faces; docs/how-it-works.md). Each face is fitted with OpenCV's
solvePnP (SQPnP) through a pinhole camera: by default OpenFace's guess, fx = fy =
500 * width / 640 and the principal point at the frame's centre; `--fx/--fy/--cx/--cy` give a calibrated one.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from .types import FrameResult

MEAN_FACE = Path(__file__).parent / "assets" / "mean_face_68.csv"
POSE_COLUMNS = ["pose_Tx", "pose_Ty", "pose_Tz", "pose_Rx", "pose_Ry", "pose_Rz"]


def mean_face() -> np.ndarray:
    """(68, 3) float64, mm, the head's frame."""
    return np.loadtxt(MEAN_FACE, delimiter=",", comments="#", skiprows=2, dtype=np.float64)


@dataclass(frozen=True)
class Camera:
    fx: float | None = None          # None: OpenFace's default for the frame (500 * width / 640)
    fy: float | None = None
    cx: float | None = None          # None: the frame's centre
    cy: float | None = None

    def __post_init__(self):
        for name in ("fx", "fy"):
            value = getattr(self, name)
            if value is not None and not 0 < value < 1e6:
                raise ValueError(f"--{name} must be a focal length in pixels, in (0, 1e6), not {value}")

    def matrix(self, width: int, height: int) -> np.ndarray:
        fx = self.fx or 500.0 * width / 640.0
        fy = self.fy or fx
        cx = (width - 1) / 2 if self.cx is None else self.cx
        cy = (height - 1) / 2 if self.cy is None else self.cy
        return np.array([[fx, 0, cx], [0, fy, cy], [0, 0, 1]], np.float64)


def euler_xyz(rotation: np.ndarray) -> np.ndarray:
    """R = Rx(a) @ Ry(b) @ Rz(c) -> (a, b, c), radians."""
    b = np.arcsin(np.clip(rotation[0, 2], -1.0, 1.0))
    a = np.arctan2(-rotation[1, 2], rotation[2, 2])
    c = np.arctan2(-rotation[0, 1], rotation[0, 0])
    return np.array([a, b, c])


def rotation_xyz(a: float, b: float, c: float) -> np.ndarray:
    ca, sa, cb, sb, cc, sc = np.cos(a), np.sin(a), np.cos(b), np.sin(b), np.cos(c), np.sin(c)
    rx = np.array([[1, 0, 0], [0, ca, -sa], [0, sa, ca]])
    ry = np.array([[cb, 0, sb], [0, 1, 0], [-sb, 0, cb]])
    rz = np.array([[cc, -sc, 0], [sc, cc, 0], [0, 0, 1]])
    return rx @ ry @ rz


class HeadPose:
    """`estimate(xy, (width, height)) -> (n, 6)`: pose_Tx..pose_Rz for each face's 68 points."""

    def __init__(self, camera: Camera = Camera(), model: np.ndarray | None = None):
        self.camera = camera
        self.model = mean_face() if model is None else np.asarray(model, np.float64)

    def estimate(self, xy: np.ndarray, size: tuple[int, int]) -> np.ndarray:
        k = self.camera.matrix(*size)
        out = np.full((len(xy), 6), np.nan, np.float32)
        for i, points in enumerate(np.asarray(xy, np.float64)):
            if not np.isfinite(points).all():
                continue
            # SQPnP: the global minimum of the squared reprojection error in one call (0.14 ms a face on this
            # project's CPU, a tenth of EPnP followed by Levenberg-Marquardt, the same angles to 0.01 degree).
            try:
                ok, rvec, tvec = cv2.solvePnP(self.model, points, k, None, flags=cv2.SOLVEPNP_SQPNP)
            except cv2.error:                 # points collapsed onto one spot (a failed face): no pose
                continue
            if not ok or tvec[2, 0] <= 0:     # behind the camera: no pose
                continue
            out[i, :3] = tvec[:, 0]
            out[i, 3:] = euler_xyz(cv2.Rodrigues(rvec)[0])
        return out


def pose_stage(results: Iterable[FrameResult], estimator: HeadPose) -> Iterator[FrameResult]:
    """Each result's faces with their head pose (from the landmarks as smoothed, the ones the outputs hold)."""
    for result in results:
        faces = result.faces
        if len(faces):
            pose = estimator.estimate(faces.xy, result.frame.size)
            result = dataclasses.replace(result, faces=dataclasses.replace(faces, pose=pose))
        yield result
