"""Readers for landmark data sets. Each returns plain records (image path, (68, 2) float32 landmarks,
0-based pixels) and raises `DatasetError` with a one-line reason on a wrong layout.

- `.pts` (300W / 300VW / menpo): 1-based coordinates, converted to 0-based.
- 300W folder: images with `.pts` beside them; common/challenging/full split by folder names.
- 300VW: `<clip>/vid.avi|mp4` (or `<clip>/imgs/*.jpg`) + `<clip>/annot/000001.pts`, numbered from 1.
- WFLW: the 98-point text lists (196 coords, 4 box, 6 attributes, image name), mapped to 68 points.
- Unlabelled: any folder of images, any folder of videos.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp", ".ppm")
VIDEO_EXTS = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v")

# The standard WFLW-98 -> iBUG-68 subset: jaw every 2nd point, upper brow contours, nose, 6 points per
# eye (skipping the mid-lid points), all 20 mouth points.
WFLW_TO_68 = np.array(
    list(range(0, 33, 2)) + [33, 34, 35, 36, 37, 42, 43, 44, 45, 46] + list(range(51, 60))
    + [60, 61, 63, 64, 65, 67, 68, 69, 71, 72, 73, 75] + list(range(76, 96)), dtype=np.int64)

# 300W evaluation splits by the folder names of the official release.
SPLITS_300W = {
    "common": ("lfpw/testset", "helen/testset"),
    "challenging": ("ibug",),
}


class DatasetError(ValueError):
    """Wrong or damaged data set layout; the message names the path."""


@dataclass(frozen=True)
class LandmarkRecord:
    image: Path
    landmarks: np.ndarray          # (68, 2) float32, 0-based pixels
    frame_index: int | None = None  # 0-based frame in `image` when it is a video


def read_pts(path: str | Path) -> np.ndarray:
    """Read a `.pts` file -> (n_points, 2) float32 in 0-based pixels."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8", errors="strict")
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(f"{path}: cannot read ({exc.__class__.__name__})") from None
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    try:
        start, end = lines.index("{"), lines.index("}")
    except ValueError:
        raise DatasetError(f"{path}: not a .pts file (no '{{' ... '}}' block)") from None
    n_declared = None
    for ln in lines[:start]:
        if ln.lower().startswith("n_points"):
            try:
                n_declared = int(ln.split(":", 1)[1])
            except (IndexError, ValueError):
                raise DatasetError(f"{path}: bad n_points line {ln!r}") from None
    rows = []
    for ln in lines[start + 1:end]:
        parts = ln.split()
        if len(parts) != 2:
            raise DatasetError(f"{path}: bad point line {ln!r}")
        try:
            rows.append((float(parts[0]), float(parts[1])))
        except ValueError:
            raise DatasetError(f"{path}: bad point line {ln!r}") from None
    pts = np.asarray(rows, dtype=np.float32).reshape(-1, 2)
    if n_declared is not None and n_declared != len(pts):
        raise DatasetError(f"{path}: n_points says {n_declared}, file has {len(pts)}")
    if len(pts) == 0 or not np.isfinite(pts).all():
        raise DatasetError(f"{path}: no finite points")
    return pts - 1.0


def write_pts(path: str | Path, xy: np.ndarray) -> None:
    """Write 0-based points as a 1-based `.pts` file."""
    lines = ["version: 1", f"n_points: {len(xy)}", "{"] + [f"{x + 1:.3f} {y + 1:.3f}" for x, y in xy] + ["}"]
    Path(path).write_text("\n".join(lines) + "\n")


def _image_for(pts: Path) -> Path | None:
    for ext in IMAGE_EXTS:
        candidate = pts.with_suffix(ext)
        if candidate.exists():
            return candidate
    return None


def read_300w(root: str | Path, split: str = "full") -> list[LandmarkRecord]:
    """Images with `.pts` beside them, anywhere under `root`. split: full | common | challenging."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"{root}: not a directory")
    if split not in ("full", *SPLITS_300W):
        raise DatasetError(f"unknown 300W split {split!r}")
    records = []
    for pts in sorted(root.rglob("*.pts")):
        rel = pts.relative_to(root).as_posix().lower()
        if split != "full" and not any(rel.startswith(p) or f"/{p}" in f"/{rel}" for p in SPLITS_300W[split]):
            continue
        image = _image_for(pts)
        if image is None:
            continue
        xy = read_pts(pts)
        if len(xy) != 68:
            raise DatasetError(f"{pts}: expected 68 points, found {len(xy)}")
        records.append(LandmarkRecord(image, xy))
    if not records:
        raise DatasetError(f"{root}: no image + .pts pairs found (300W layout: name.jpg beside name.pts)")
    return records


def read_300vw_clip(annot: Path) -> dict[int, np.ndarray]:
    """One 300VW clip's `annot/NNNNNN.pts` files -> {frame number (1-based): (68, 2) landmarks}."""
    labels = {}
    for pts in sorted(Path(annot).glob("*.pts")):
        if not pts.stem.isdigit():
            raise DatasetError(f"{pts}: 300VW annotations are numbered 000001.pts, ...")
        number = int(pts.stem)
        if number < 1:
            raise DatasetError(f"{pts}: 300VW frames are numbered from 1")
        labels[number] = read_pts(pts)
    return labels


def read_300vw(root: str | Path) -> list[LandmarkRecord]:
    """300VW clips: `<clip>/annot/NNNNNN.pts` with `<clip>/vid.avi|mp4` or `<clip>/imgs/NNNNNN.jpg`."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"{root}: not a directory")
    records = []
    for annot in sorted(root.glob("*/annot")):
        clip = annot.parent
        video = next((clip / f"vid{ext}" for ext in VIDEO_EXTS if (clip / f"vid{ext}").exists()), None)
        for number, xy in read_300vw_clip(annot).items():
            if video is not None:
                records.append(LandmarkRecord(video, xy, frame_index=number - 1))
                continue
            image = _image_for(clip / "imgs" / f"{number:06d}.pts")
            if image is None:
                raise DatasetError(f"{clip}: no vid.avi/vid.mp4 and no imgs/{number:06d}.jpg for {number:06d}.pts")
            records.append(LandmarkRecord(image, xy))
    if not records:
        raise DatasetError(f"{root}: no 300VW clips found (expected <clip>/annot/000001.pts)")
    return records


def read_wflw(list_file: str | Path, image_root: str | Path) -> list[LandmarkRecord]:
    """WFLW annotation list -> 68-point records (98 -> 68 with WFLW_TO_68)."""
    list_file, image_root = Path(list_file), Path(image_root)
    if not list_file.is_file():
        raise DatasetError(f"{list_file}: WFLW list file not found")
    records = []
    for number, line in enumerate(list_file.read_text(errors="replace").splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 196 + 4 + 6 + 1:
            raise DatasetError(f"{list_file}:{number}: expected 207 fields (196 coords, 4 box, 6 attrs, name), got {len(parts)}")
        try:
            coords = np.asarray(parts[:196], dtype=np.float32).reshape(98, 2)
        except ValueError:
            raise DatasetError(f"{list_file}:{number}: non-numeric coordinate") from None
        if not np.isfinite(coords).all():
            raise DatasetError(f"{list_file}:{number}: non-finite coordinate")
        records.append(LandmarkRecord(image_root / parts[-1], coords[WFLW_TO_68]))
    if not records:
        raise DatasetError(f"{list_file}: empty WFLW list")
    return records


def list_videos(root: str | Path) -> list[Path]:
    root = Path(root)
    if root.is_file() and root.suffix.lower() in VIDEO_EXTS:
        return [root]
    if not root.is_dir():
        raise DatasetError(f"{root}: not a directory or video file")
    found = sorted(p for p in root.rglob("*") if p.suffix.lower() in VIDEO_EXTS)
    if not found:
        raise DatasetError(f"{root}: no videos ({', '.join(VIDEO_EXTS)})")
    return found


def read_manifest(root: str | Path) -> list[dict]:
    """The `manifest.csv` of ../shared/data/300w_train (subset, stem, origin, crop offset and scale)."""
    with open(Path(root) / "manifest.csv", newline="") as f:
        return list(csv.DictReader(f))
