"""Validation numbers of the model card, from one command:

    python -m benchmarks.model_card --weights dhln=runs/dhln/best.safetensors sht=tracker/assets/shtrack-cpu-rt.safetensors

1. held-out 300W faces (196 faces, human labels) degraded to face widths 16/24/32/64 px exactly as in training
   (no augmentation, fixed seed): NME (inter-ocular), FR@0.08, for each weights file and for dlib's 68-point
   pipeline on the same degraded 64x64 inputs (upscaled 4x, since dlib's HOG window is 80 px);
2. held-out clips at 16/24/32/64 px against the teacher (benchmarks/lowres.py, with the found rate), tracked as the
   tracker runs by default (no smoothing).
Writes benchmarks/results/model_card.json and the block between the markers in MODEL_CARD.md.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import cv2
import numpy as np
import torch

from train import metrics
from train.common import evaluate_faces, score_faces
from train.data import NO_AUGMENT, LabelledFaces, split_records
from train.readers import read_300w

from .common import RESULTS, console, markdown_header, markdown_row, pct, replace_block, save, table

CARD = Path(__file__).resolve().parents[1] / "MODEL_CARD.md"
START, END = "<!-- card:start -->", "<!-- card:end -->"
WIDTHS = (16.0, 24.0, 32.0, 64.0)


def dlib_on_faces(records, widths, cfg) -> dict:
    from train.label import DlibTeacher

    teacher = DlibTeacher()
    out = {}
    for width in widths:
        ds = LabelledFaces(records, cfg, aug=NO_AUGMENT, seed=1234, face_width=float(width))
        errors, found = [], 0
        for i in range(len(ds)):
            item = ds[i]
            rgb = ((item["input"].permute(1, 2, 0).numpy() * np.array(cfg.std) + np.array(cfg.mean)) * 255)
            rgb = np.clip(rgb, 0, 255).astype(np.uint8)
            big = cv2.resize(rgb, None, fx=4, fy=4, interpolation=cv2.INTER_CUBIC)
            xy = teacher(np.ascontiguousarray(big))
            gt = item["landmarks"].numpy()
            if xy is None:
                errors.append(np.inf)   # not found counts as a failure
                continue
            found += 1
            errors.append(metrics.nme(((xy + 0.5) / 4 - 0.5)[None], gt[None])[0])
        errors = np.array(errors)
        s = metrics.summary(errors[np.isfinite(errors)], 0.08)
        s["fr@0.08"] = float((errors > 0.08).mean())
        s["found"] = found / len(ds)
        out[f"{int(width)}px"] = s
    return out


def onnx_on_faces(path: Path, records, widths) -> dict:
    """Held-out faces through ONNX Runtime (exported or int8 models), scored as evaluate_faces scores torch models."""
    from tracker.backends import load_backend

    backend = load_backend(path, "onnxruntime", threads=2)
    return score_faces(lambda x: backend.infer(x.numpy())[0], backend.cfg, records, widths)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    repo = Path(__file__).resolve().parents[1]
    p.add_argument("--data", type=Path, default=repo.parent / "shared/data/300w_train")
    p.add_argument("--weights", nargs="+", help="NAME=PATH pairs")
    p.add_argument("--render-only", action="store_true", help="rewrite MODEL_CARD.md from the last results")
    p.add_argument("--no-dlib", action="store_true")
    p.add_argument("--no-clips", action="store_true")
    p.add_argument("--stride", type=int, default=2, help="clip frame stride for the clip numbers")
    args = p.parse_args(argv)
    if args.render_only:
        saved = json.loads((RESULTS / "model_card.json").read_text())
        write_card(saved["held_out_300w"]["results"], saved["clips"], saved["held_out_300w"]["faces"])
        return 0
    if not args.weights:
        p.error("--weights NAME=PATH ... is required")
    from sht_model import load_model
    from sht_model.config import get_config

    _, val = split_records(read_300w(args.data))
    faces = {}
    cfg = None
    for spec in args.weights:
        name, path = spec.split("=", 1)
        if path.endswith(".onnx"):
            faces[name] = onnx_on_faces(Path(path), val, WIDTHS)
            continue
        model = load_model(path)
        cfg = cfg or model.cfg
        torch.set_num_threads(2)
        faces[name] = evaluate_faces(model, val, WIDTHS, torch.device("cpu"))
    if not args.no_dlib:
        faces["dlib"] = dlib_on_faces(val, WIDTHS, cfg or get_config("cpu-rt"))
    clips = None
    if not args.no_clips:
        from . import lowres

        lowres.main(["--weights", *args.weights, "--widths", *[str(int(w)) for w in WIDTHS],
                     "--stride", str(args.stride), "--smoothing", "none", "--no-mediapipe",
                     "--name", "model_card_clips"]
                    + (["--no-dlib"] if args.no_dlib else []))
        clips = json.loads((RESULTS / "model_card_clips.json").read_text())
    save("model_card", {"held_out_300w": {"faces": len(val), "results": faces}, "clips": clips})
    rows = [[w, n, f"{s['nme']:.2%}", f"{s['fr@0.08']:.1%}", f"{s.get('found', 1.0):.1%}"]
            for n, per in faces.items() for w, s in per.items()]
    console.print(table(f"held-out 300W faces ({len(val)})", ["width", "method", "NME", "FR@0.08", "found"], rows))
    write_card(faces, clips, len(val))
    return 0


def write_card(faces: dict, clips: dict | None, n_faces: int) -> None:
    lines = [START, f"Held-out 300W faces ({n_faces}, human labels), degraded to each face width; NME by inter-ocular "
             "distance (outer eye corners), FR = share of faces with NME > 0.08 (dlib: NME over the faces it found, a face "
             "not found counts as a failure in FR):", "",
             *markdown_header("face width", *(f"{n} NME / FR" for n in faces))]
    for w in next(iter(faces.values())):
        lines.append(markdown_row(w, *(f"{pct(faces[n][w]['nme'])} / {pct(faces[n][w]['fr@0.08'], 1)}" for n in faces)))
    if "dlib" in faces:
        lines.append("")
        lines.append("dlib found a face in: " + ", ".join(f"{w} {s['found']:.0%}" for w, s in faces["dlib"].items()))
    if clips:
        res = clips["results"]
        methods = list(next(iter(res.values())))
        lines += ["", f"Held-out clips ({', '.join(clips['clips'])}; {sum(clips['frames'].values())} frames), scaled into "
                  "320x240, tracked as a sequence; reference = dlib on the full-resolution frame (so dlib is scored "
                  "against itself). NME and FR@0.08 over the frames where the face was found / found rate:", "",
                  *markdown_header("face width", *methods)]
        for w, per in res.items():
            lines.append(markdown_row(f"{w} px", *(
                f"{pct(per[m]['nme'])} / {pct(per[m]['fr@0.08'], 1)} / {pct(per[m]['found'], 1)}" for m in methods)))
    lines.append(END)
    replace_block(CARD, START, END, "\n".join(lines))


if __name__ == "__main__":
    sys.exit(main())
