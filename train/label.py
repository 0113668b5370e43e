"""Teacher labels by dlib's 68-point iBUG predictor at full resolution (pip `dlib-bin` + `face-recognition-models`,
both offline; the `[peers]` extra).

`python -m train.label VIDEO_DIR OUT_DIR` writes a 300VW-layout copy of a folder of videos:

    OUT_DIR/<clip>/vid.mp4            (symlink to the source video)
    OUT_DIR/<clip>/annot/000001.pts   (1-based frame numbers, 1-based coordinates as in 300VW)

`python -m train.label faces IMAGE_DIR [IMAGE_DIR ...] --out OUT_DIR` writes a 300W-layout copy of folders of
face photos (UTKFace, CelebA), which `train --teacher OUT_DIR` reads like the human-labelled faces:

    OUT_DIR/<folder>/<name>.jpg       (symlink to the photo)
    OUT_DIR/<folder>/<name>.pts       (dlib's landmarks, 1-based, from the photo upscaled to a ~200 px face)

Frames and photos where dlib finds no face are skipped and counted. dlib's predictor was trained on iBUG 300-W:
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


TEACHER_FACE_PX = 200     # photos are upscaled until their face is about this wide before dlib labels them


def label_photo(teacher: DlibTeacher, path: Path) -> np.ndarray | None:
    """dlib's landmarks of the largest face in one photo, in the photo's 0-based pixels, or None (no face, or
    points well off the picture). dlib's points are whole pixels of the image it sees: the photo is upscaled (bicubic)
    so a face is ~TEACHER_FACE_PX wide first, which makes them quarter-pixels or finer at the photo's size."""
    import cv2

    bgr = cv2.imdecode(np.fromfile(str(path), np.uint8), cv2.IMREAD_COLOR)
    if bgr is None:
        return None
    h, w = bgr.shape[:2]
    k = max(1, int(np.ceil(TEACHER_FACE_PX / (0.6 * min(h, w)))))   # aligned crops: the face is ~60% of the side
    rgb = cv2.cvtColor(cv2.resize(bgr, (w * k, h * k), interpolation=cv2.INTER_CUBIC), cv2.COLOR_BGR2RGB)
    # A border: in aligned crops the face reaches the edges, where dlib's HOG windows do not fit.
    pad = int(0.25 * max(rgb.shape[:2]))
    rgb = cv2.copyMakeBorder(rgb, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
    xy = teacher(rgb)
    if xy is None:
        return None
    xy = (xy - pad + 0.5) / k - 0.5    # pixel centres of the padded, upscaled image -> the photo's
    # Aligned crops cut the chin or jaw at the edge; points a little beyond it are dlib's guess of the hidden
    # contour, further out the fit has failed.
    margin = 0.08 * min(h, w)
    if (xy < -margin).any() or (xy[:, 0] > w + margin).any() or (xy[:, 1] > h + margin).any():
        return None
    return xy


def _label_photos(job: tuple[list[Path], Path]) -> tuple[int, int]:
    paths, out = job
    teacher = DlibTeacher()
    labelled = skipped = 0
    for path in paths:
        pts = out / (path.name[:-len(path.suffix)] + ".pts")
        if pts.exists():
            labelled += 1
            continue
        xy = label_photo(teacher, path)
        if xy is None:
            skipped += 1
            continue
        link = out / path.name
        if not link.is_symlink():
            link.symlink_to(path.resolve())
        tmp = pts.with_name(pts.name + ".partial")
        write_pts(tmp, xy)
        tmp.replace(pts)     # a label is there whole or not at all: an interrupted run redoes only what is missing
        labelled += 1
    return labelled, skipped


def label_faces(folders: list[Path], out: Path, processes: int = 1) -> dict[str, tuple[int, int]]:
    """Teacher-label every photo of each folder into out/<folder name>/ (300W layout). Photos labelled before
    are kept (a run goes on where an interrupted one stopped). -> {folder: (labelled, skipped)}."""
    from multiprocessing import get_context

    from .readers import IMAGE_EXTS

    counts = {}
    for folder in folders:
        photos = sorted(p for p in Path(folder).iterdir() if p.suffix.lower() in IMAGE_EXTS)
        dest = out / Path(folder).name
        dest.mkdir(parents=True, exist_ok=True)
        chunks = [(photos[i::processes], dest) for i in range(processes)]
        if processes == 1:
            results = [_label_photos(chunks[0])]
        else:
            with get_context("spawn").Pool(processes) as pool:
                results = pool.map(_label_photos, chunks)
        counts[Path(folder).name] = (sum(r[0] for r in results), sum(r[1] for r in results))
        log.info("%s: %d photos labelled, %d skipped (no face found by dlib)", folder, *counts[Path(folder).name])
    return counts


def faces_main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m train.label faces", description=__doc__.split("\n\n")[2])
    p.add_argument("folders", type=Path, nargs="+", help="folders of face photos")
    p.add_argument("--out", type=Path, required=True, help="output folder (300W layout, one subfolder per input)")
    p.add_argument("--processes", type=int, default=1, choices=range(1, 9), metavar="N",
                   help="labelling processes (1-8)")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    for folder in args.folders:
        if not folder.is_dir():
            p.error(f"{folder}: not a directory")
    label_faces(args.folders, args.out, args.processes)
    (args.out / "finished").write_text("\n".join(str(f) for f in args.folders) + "\n")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "faces":
        return faces_main(argv[1:])
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
