from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared" / "data"


def run_main(*args: str) -> subprocess.CompletedProcess:
    """`shtrack ARGS` in this process (tracker.cli.main) -> its exit code, stdout and stderr as a subprocess would
    give them: a usage error's SystemExit is its exit code. Log records go to the handler of the first run, not
    to the stderr captured here: check printed errors, exit codes and files."""
    import contextlib
    import io

    from tracker.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main([*args])
        except SystemExit as exc:
            code = exc.code
    return subprocess.CompletedProcess(["shtrack", *args], code, out.getvalue(), err.getvalue())


def shared(*parts: str) -> Path:
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"needs ../shared/data/{'/'.join(parts)} beside the repo (absent here)")
    return path


@pytest.fixture(scope="session")
def tiny_weights(tmp_path_factory) -> Path:
    """A randomly initialised `test`-preset model saved as safetensors (plumbing tests only)."""
    import torch

    from sht_model import build_model, save_model

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("weights") / "tiny.safetensors"
    return save_model(build_model("test"), path)


@pytest.fixture(scope="session")
def bundled_weights() -> Path:
    from tracker.backends import DEFAULT_TAG, WEIGHTS

    path = WEIGHTS[DEFAULT_TAG].file
    if not path.exists():
        pytest.fail(f"bundled weights missing: {path}")
    return path


@pytest.fixture(scope="session")
def faces_300w(tmp_path_factory) -> Path:
    """A 300W-layout fixture: 8 faces copied from ../shared/data/300w_train (images + .pts)."""
    import shutil

    src = shared("300w_train")
    out = tmp_path_factory.mktemp("300w") / "afw"
    out.mkdir()
    for pts in sorted((src / "afw").glob("*.pts"))[:8]:
        shutil.copy(pts, out / pts.name)
        shutil.copy(pts.with_suffix(".jpg"), out / pts.with_suffix(".jpg").name)
    return out.parent


def write_tb_events(run: Path, when: int, scalars: dict[str, dict[int, float]]) -> Path:
    """One TensorBoard event file in `run/tb` holding `scalars` ({tag: {step: value}}), its mtime set to `when`
    and its name sorting the other way from its mtime: readers must order an interrupted invocation's file and
    its resumption's by time, not by name."""
    import os
    import tempfile

    from torch.utils.tensorboard import SummaryWriter

    with tempfile.TemporaryDirectory() as folder:
        with SummaryWriter(folder) as writer:
            for tag, values in scalars.items():
                for step, value in values.items():
                    writer.add_scalar(tag, value, step)
        target = run / "tb" / f"events.out.tfevents.{3_000_000 - when}.vm.1.0"
        target.parent.mkdir(parents=True, exist_ok=True)
        next(Path(folder).glob("events.out.tfevents.*")).replace(target)
    os.utime(target, (when, when))
    return target


def write_video(path: Path, frames: list[np.ndarray], fps: int = 25) -> Path:
    from tracker.demo import write_clip

    return write_clip(frames, path, fps)


def noise_video(target, frames: int, codec_options: dict | None = None, container_format: str | None = None,
                seed: int = 0):
    """H.264 noise frames (96x64, 25 fps) into `target`, a path or a binary file object; returns it."""
    import av

    rng = np.random.default_rng(seed)
    with av.open(target if hasattr(target, "write") else str(target), "w", format=container_format) as container:
        stream = container.add_stream("libx264", rate=25, options=codec_options or {})
        stream.width, stream.height, stream.pix_fmt = 96, 64, "yuv420p"
        for _ in range(frames):
            image = rng.integers(0, 255, (64, 96, 3), dtype=np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="bgr24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return target


def astronaut_scene(n: int, centres, face_width: float, size=(320, 240), jitter: float = 0.0, seed: int = 0):
    """Frames with astronaut faces at the given centres (list per frame of (cx, cy))."""
    from skimage import data

    from tracker.demo import ASTRONAUT_FACE_CENTRE, ASTRONAUT_FACE_WIDTH

    import cv2

    photo = cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)
    rng = np.random.default_rng(seed)
    frames = []
    for i in range(n):
        canvas = np.full((size[1], size[0], 3), 70, np.uint8)
        for cx, cy in centres(i):
            m = cv2.getRotationMatrix2D(ASTRONAUT_FACE_CENTRE, 0, face_width / ASTRONAUT_FACE_WIDTH)
            m[:, 2] += np.array([cx, cy]) - ASTRONAUT_FACE_CENTRE
            patch = cv2.warpAffine(photo, m, size, flags=cv2.INTER_AREA, borderValue=(0, 0, 0))
            mask = cv2.warpAffine(np.full(photo.shape[:2], 255, np.uint8), m, size) > 0
            # Only the head region, so two faces side by side do not overlap.
            keep = np.zeros_like(mask)
            r = int(face_width)
            keep[max(0, int(cy) - r):int(cy) + r, max(0, int(cx) - r):int(cx) + r] = True
            canvas[mask & keep] = patch[mask & keep]
        if jitter:
            canvas = np.clip(canvas + rng.normal(0, jitter, canvas.shape), 0, 255).astype(np.uint8)
        frames.append(canvas)
    return frames


# ---------------------------------------------------------------- sources
