"""Does the hallucination stream hallucinate? Each model's face against bicubic upsampling of its input.

    python -m benchmarks.hallucination runs/chain-3/cpu-rt-base/last.safetensors [more weights ...] [--widths 16 32]

On the held-out 300W faces (train/data.py's split), degraded to each width as in training, without
augmentation: PSNR (dB) and SSIM against the HR face (RGB, 0-255) of the hallucinated face and of the bicubic
upsampling of the network's input, and the model's gain over bicubic (the paper's Table 1 question; the
ablation's PSNR / SSIM table comes from the same function). Writes benchmarks/results/<--name>.json.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from sht_model import load_model
from train.data import split_records
from train.readers import read_300w

from .ablation import hallucination_quality
from .common import console, save, table

REPO = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.hallucination", description=__doc__.split("\n")[0])
    p.add_argument("weights", type=Path, nargs="+", help="DHLN weights (safetensors)")
    p.add_argument("--widths", type=float, nargs="+", default=[16, 32], help="face widths (px) of the inputs")
    p.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data" / "300w_train")
    p.add_argument("--val-fraction", type=float, default=0.1, help="held-out share of --data (train/data.py)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--name", default="hallucination", help="results file: benchmarks/results/<name>.json")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    _, val = split_records(read_300w(args.data), args.val_fraction)
    if not val:
        raise SystemExit(f"{args.data}: no held-out faces at --val-fraction {args.val_fraction}")
    results, rows = {}, []
    for path in args.weights:
        scores = results[str(path)] = hallucination_quality(load_model(path), val, args.widths)
        for width, s in scores.items():
            s["psnr_gain_db"] = s["model"]["psnr"] - s["bicubic"]["psnr"]
            rows.append([str(path), width, f"{s['model']['psnr']:.2f} / {s['model']['ssim']:.3f}",
                         f"{s['bicubic']['psnr']:.2f} / {s['bicubic']['ssim']:.3f}", f"{s['psnr_gain_db']:+.2f}"])
    console.print(table(f"hallucinated face against the HR face, {len(val)} held-out faces",
                        ["weights", "width", "model PSNR / SSIM", "bicubic PSNR / SSIM", "gain dB"], rows))
    save(args.name, {"faces": len(val), "widths": args.widths, "weights": results})
    return 0


if __name__ == "__main__":
    sys.exit(main())
