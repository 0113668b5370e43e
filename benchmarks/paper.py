"""The paper's evaluation protocol, for users who have 300W / WFLW:

    python -m benchmarks.paper --300w DIR [--weights W] [--lr-size 16]
    python -m benchmarks.paper --wflw LIST_FILE IMAGE_ROOT [--weights W] [--lr-size 16]

Each face is cropped around its ground-truth landmark box (the usual protocol), downscaled so the crop is
`lr-size` px (16 = the paper's 16x16 LR faces; 0 = no downscaling), bicubically resized to the model input,
and scored: NME by inter-ocular distance (outer eye corners) for 300W common / challenging / full, and
NME_io, AUC@0.10 and FR@0.10 for WFLW (68-point subset of its 98). The hallucinated face is scored against
the HR crop with PSNR and SSIM on the Y channel. Writes benchmarks/results/paper.json.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np
import torch

from sht_model import geometry
from sht_model.heatmap import decode, from_heatmap_coords
from train import metrics
from train.data import load_rgb, to_tensor
from train.readers import read_300w, read_wflw

from .common import console, save, table


def evaluate(model, records, lr_size: int, batch: int = 32) -> dict:
    cfg = model.cfg
    errors, psnr, ssim = [], [], []
    for start in range(0, len(records), batch):
        chunk = records[start:start + batch]
        inputs, gts, hrs, mats = [], [], [], []
        for rec in chunk:
            image = load_rgb(rec.image)
            m = geometry.crop_matrix(geometry.landmark_box(rec.landmarks), cfg.input_size)
            hr_m = geometry.crop_matrix(geometry.landmark_box(rec.landmarks), cfg.face_size)
            hr = geometry.warp(image, hr_m, cfg.face_size, cv2.INTER_AREA)
            crop = geometry.warp(image, geometry.crop_matrix(geometry.landmark_box(rec.landmarks), 256), 256,
                                 cv2.INTER_AREA)
            if lr_size:
                crop = cv2.resize(crop, (lr_size, lr_size), interpolation=cv2.INTER_AREA)
            lr = cv2.resize(crop, (cfg.input_size, cfg.input_size), interpolation=cv2.INTER_CUBIC)
            inputs.append(to_tensor(lr, cfg))
            gts.append(geometry.apply(m, rec.landmarks))
            hrs.append(hr)
            mats.append(m)
        with torch.no_grad():
            out = model(torch.stack(inputs))
        xy, _ = decode(out.heatmaps[-1].numpy(), cfg.heatmap_sigma)
        xy = from_heatmap_coords(xy, cfg.input_size, cfg.feature_size)
        errors.extend(metrics.nme(xy, np.stack(gts)).tolist())
        faces = out.face.permute(0, 2, 3, 1).numpy() * np.array(cfg.std) + np.array(cfg.mean)
        for face, hr in zip(faces, hrs):
            face = np.clip(face * 255 + 0.5, 0, 255).astype(np.uint8)
            psnr.append(metrics.psnr_y(face, hr))
            ssim.append(metrics.ssim_y(face, hr))
    errors = np.asarray(errors)
    return {"n": len(errors), "nme_io": float(errors.mean()), "auc@0.10": metrics.auc_fr(errors, 0.10)[0],
            "fr@0.10": metrics.auc_fr(errors, 0.10)[1], "psnr_y": float(np.mean(psnr)), "ssim_y": float(np.mean(ssim))}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--300w", dest="w300", type=Path, help="300W root (lfpw/testset, helen/testset, ibug, ...)")
    p.add_argument("--wflw", nargs=2, type=Path, metavar=("LIST", "IMAGES"))
    p.add_argument("--weights", type=Path)
    p.add_argument("--lr-size", type=int, default=16)
    args = p.parse_args(argv)
    if not args.w300 and not args.wflw:
        p.error("give --300w DIR and/or --wflw LIST IMAGES")
    from sht_model import load_model
    from tracker.backends import DEFAULT_TAG, WEIGHTS

    model = load_model(args.weights or WEIGHTS[DEFAULT_TAG].file)
    results = {}
    if args.w300:
        for split in ("common", "challenging", "full"):
            try:
                records = read_300w(args.w300, split)
            except ValueError as exc:
                console.print(f"300W {split}: skipped ({exc})")
                continue
            results[f"300W {split}"] = evaluate(model, records, args.lr_size)
    if args.wflw:
        results["WFLW"] = evaluate(model, read_wflw(*args.wflw), args.lr_size)
    rows = [[k, r["n"], f"{r['nme_io']:.2%}", f"{r['auc@0.10']:.3f}", f"{r['fr@0.10']:.1%}", f"{r['psnr_y']:.2f}",
             f"{r['ssim_y']:.3f}"] for k, r in results.items()]
    console.print(table(f"paper protocol, LR {args.lr_size}px", ["set", "faces", "NME_io", "AUC@0.10", "FR@0.10",
                                                                  "PSNR-Y", "SSIM-Y"], rows))
    save("paper", {"lr_size": args.lr_size, "weights": str(args.weights or WEIGHTS[DEFAULT_TAG].file), "results": results})
    return 0


if __name__ == "__main__":
    sys.exit(main())
