"""Teacher labels: `python -m train.label VIDEO_DIR OUT_DIR` writes a 300VW-layout copy of a folder of videos,
labelled by dlib's 68-point iBUG predictor on full-resolution frames (pip `dlib-bin` +
`face-recognition-models`, both offline; the `[peers]` extra).

    OUT_DIR/<clip>/vid.mp4            (symlink to the source video)
    OUT_DIR/<clip>/annot/000001.pts   (1-based frame numbers, 1-based coordinates as in 300VW)

Frames where dlib finds no face are skipped and counted. dlib's predictor was trained on iBUG 300-W:
its labels are for non-commercial research use only, like the 300W annotations themselves.
"""

from __future__ import annotations

import argparse
import importlib.util
import logging
import sys
from pathlib import Path

import numpy as np

from .readers import list_videos, write_pts

log = logging.getLogger("shtrack.train")


def dlib_model_path(name: str = "shape_predictor_68_face_landmarks.dat") -> Path:
    # Located without importing face_recognition_models: its __init__ needs pkg_resources (old setuptools).
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("face-recognition-models is not installed: pip install 'shtrack[peers]'")
    path = Path(list(spec.submodule_search_locations)[0]) / "models" / name
    if not path.exists():
        raise RuntimeError(f"{path}: missing from face-recognition-models")
    return path


class DlibTeacher:
    """dlib HOG face detector + 68-point shape predictor: the teacher and the peer baseline."""

    def __init__(self, upsample: int = 0):
        import dlib

        self.detector = dlib.get_frontal_face_detector()
        self.predictor = dlib.shape_predictor(str(dlib_model_path()))
        self.upsample = upsample

    def detect(self, rgb: np.ndarray) -> list:
        return list(self.detector(rgb, self.upsample))

    def landmarks(self, rgb: np.ndarray, rect) -> np.ndarray:
        shape = self.predictor(rgb, rect)
        return np.array([(p.x, p.y) for p in shape.parts()], np.float32)

    def __call__(self, rgb: np.ndarray) -> np.ndarray | None:
        """Largest face's (68, 2) landmarks in 0-based pixels, or None."""
        rects = self.detect(rgb)
        if not rects:
            return None
        rect = max(rects, key=lambda r: r.width() * r.height())
        return self.landmarks(rgb, rect)


def label_video(video: Path, out_dir: Path, teacher: DlibTeacher, stride: int = 1) -> tuple[int, int]:
    import cv2

    from tracker.sources import open_source

    clip = out_dir / video.stem
    annot = clip / "annot"
    annot.mkdir(parents=True, exist_ok=True)
    link = clip / f"vid{video.suffix}"
    if not link.exists():
        link.symlink_to(video.resolve())
    labelled = skipped = 0
    with open_source(str(video)) as source:    # the tracker's reader, so labels and tracker see the same frames
        for frame in source:
            if (frame.index - 1) % stride:
                continue
            xy = teacher(cv2.cvtColor(frame.image, cv2.COLOR_BGR2RGB))
            if xy is None:
                skipped += 1
                continue
            write_pts(annot / f"{frame.index:06d}.pts", xy)
            labelled += 1
    return labelled, skipped


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m train.label", description=__doc__.split("\n\n")[0])
    p.add_argument("videos", type=Path, help="folder of videos (or one video)")
    p.add_argument("out", type=Path, help="output folder: <clip>/annot/NNNNNN.pts (300VW layout)")
    p.add_argument("--stride", type=int, default=1, help="label every N-th frame")
    p.add_argument("--only", nargs="*", default=None, help="clip names (stems) to label")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    teacher = DlibTeacher()
    for video in list_videos(args.videos):
        if args.only and video.stem not in args.only:
            continue
        labelled, skipped = label_video(video, args.out, teacher, args.stride)
        log.info("%s: %d frames labelled, %d skipped (no face found by dlib)", video.name, labelled, skipped)
    return 0


if __name__ == "__main__":
    sys.exit(main())
