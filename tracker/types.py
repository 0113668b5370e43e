"""The two dataclasses every stage passes along: a decoded `Frame` and the `Faces` found in it.

`Faces` holds every face of one frame as arrays (supervision's KeyPoints shape): `xy` (n, 68, 2) and
`confidence` (n, 68) in source-frame pixels, plus boxes, ids and per-face flags. No per-landmark objects.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

NUM_LANDMARKS = 68


@dataclass
class Frame:
    index: int                 # 1-based, like OpenFace
    timestamp: float           # seconds, from the stream's pts (not from counting frames)
    image: np.ndarray          # (H, W, 3) uint8 BGR
    source: str = ""

    @property
    def size(self) -> tuple[int, int]:
        return self.image.shape[1], self.image.shape[0]


@dataclass
class Faces:
    xy: np.ndarray                          # (n, 68, 2) float32, source pixels
    confidence: np.ndarray                  # (n, 68) float32 in [0, 1], heatmap peak values
    boxes: np.ndarray                       # (n, 4) float32 x0, y0, x1, y1: the crop's face box
    face_id: np.ndarray                     # (n,) int64, stable per track
    success: np.ndarray                     # (n,) bool: landmarks trusted (confidence above threshold)
    hallucinated: list[np.ndarray] | None = field(default=None, repr=False)  # n x (S, S, 3) uint8 BGR
    model: np.ndarray | None = None         # (n,) str: which model of the ladder gave each face (tracker.routing)
    pose: np.ndarray | None = None          # (n, 6) float32 pose_Tx..pose_Rz (tracker.pose), NaN where none fits

    def __post_init__(self):
        # Validated, never reshaped: a transposed (n, 2, 68) array reshaped to (n, 68, 2) would scramble points.
        n = len(self.xy)
        self.xy = _checked("xy", self.xy, np.float32, (n, NUM_LANDMARKS, 2))
        self.confidence = _checked("confidence", self.confidence, np.float32, (n, NUM_LANDMARKS))
        self.boxes = _checked("boxes", self.boxes, np.float32, (n, 4))
        self.face_id = _checked("face_id", self.face_id, np.int64, (n,))
        self.success = _checked("success", self.success, bool, (n,))
        if self.model is not None:
            self.model = _checked("model", self.model, str, (n,))
        if self.pose is not None:
            self.pose = _checked("pose", self.pose, np.float32, (n, 6))
        if self.hallucinated is not None and len(self.hallucinated) != n:
            raise ValueError(f"hallucinated has {len(self.hallucinated)} faces, xy has {n}")

    def __len__(self) -> int:
        return len(self.xy)

    def __getitem__(self, index) -> "Faces":
        idx = np.atleast_1d(np.arange(len(self))[index])
        hall = [self.hallucinated[i] for i in idx] if self.hallucinated is not None else None
        return Faces(self.xy[idx], self.confidence[idx], self.boxes[idx], self.face_id[idx], self.success[idx], hall,
                     None if self.model is None else self.model[idx], None if self.pose is None else self.pose[idx])

    @property
    def score(self) -> np.ndarray:
        """Per-face confidence: mean of the 68 heatmap peaks."""
        return self.confidence.mean(1) if len(self) else np.zeros(0, np.float32)

    def as_keypoints(self):
        """The faces as supervision's `KeyPoints` (xy, confidence, face ids as class ids), when the supervision
        package is installed (it is not a dependency)."""
        try:
            import supervision as sv
        except ImportError:
            raise ImportError("Faces.as_keypoints needs supervision: pip install supervision") from None
        return sv.KeyPoints(xy=self.xy.copy(), confidence=self.confidence.copy(), class_id=self.face_id.astype(int))

    @classmethod
    def empty(cls) -> "Faces":
        return cls(np.zeros((0, NUM_LANDMARKS, 2)), np.zeros((0, NUM_LANDMARKS)), np.zeros((0, 4)),
                   np.zeros(0, np.int64), np.zeros(0, bool))


def _checked(name: str, value, dtype, shape: tuple[int, ...]) -> np.ndarray:
    array = np.asarray(value, dtype)
    if array.shape != shape:
        raise ValueError(f"Faces.{name} must have shape {shape}, not {array.shape}")
    return array


@dataclass
class FrameResult:
    frame: Frame
    faces: Faces
    timings: dict[str, float] = field(default_factory=dict)   # stage -> milliseconds for this frame
