"""`python -m train STAGE [--config FILE] [--key value ...]` (also `shtrack train ...`).

Stages: dhln, fptn, sht (training loops), label (teacher labels for video folders).
Every TrainConfig field is a flag (`--steps 100`, `--batch-size 16`); a `--config` TOML/JSON file sets
defaults that flags override. Multi-process: `torchrun --nproc-per-node N -m train dhln ...`.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import sys

from .common import TrainConfig, setup, teardown


HELP = {
    "preset": "DHLN architecture preset (sht_model/config.py)",
    "data": "labelled faces, 300W layout (196 held out by train/data.py)",
    "videos": "folders of clips (comma-separated) for the sht stage's video pairs",
    "video_labels": "teacher labels of those clips (300VW layout); without them video pairs are unlabelled",
    "out": "run folder: checkpoints, last/best.safetensors, TensorBoard logs",
    "init": "DHLN weights to start from (.safetensors)",
    "fptn_init": "FPTN weights to start from (.safetensors)",
    "vgg19_weights": "torchvision VGG-19 state dict for FPTN's perceptual term; none: the term is off",
    "steps": "optimiser steps (the cosine schedule spans them)",
    "batch_size": "samples per step (per process under torchrun)",
    "lr": "peak learning rate (AdamW)",
    "weight_decay": "AdamW weight decay",
    "warmup": "linear warm-up steps before the cosine decay",
    "eval_every": "steps between held-out evaluations (NME at --val-widths)",
    "ckpt_every": "steps between checkpoints (--resume continues from the last)",
    "stop_after": "stop after this step with a checkpoint, the schedule still spanning --steps (--resume goes on); "
                  "0 = run to --steps",
    "log_every": "steps between logged losses and gradient shares",
    "seed": "random seed (data order, augmentation, initialisation)",
    "workers": "data-loading worker processes",
    "threads": "torch intra-op threads; 0 = torch's default",
    "val_fraction": "share of the labelled faces held out (by a hash of their names)",
    "val_widths": "face widths (px) at which held-out faces are scored",
    "unlabelled_fraction": "sht: share of unlabelled video pairs in a batch",
    "fptn_lr": "sht: FPTN's own peak learning rate (its generator and discriminators keep their optimisers)",
    "fptn_channels": "FPTN generator width",
    "fptn_blocks": "FPTN pose-attention transfer blocks",
    "amp": "mixed precision (CUDA only)",
    "resume": "continue from the run folder's last checkpoint",
    "max_records": "cap the labelled set (tests); 0 = all",
    "freeze_bn": "dhln/sht: keep DHLN's BatchNorm statistics fixed (fine-tuning)",
    "init_partial": "build --preset and copy the --init tensors that fit (a smaller model from a larger one)",
    "aug_angle": "rotation augmentation, +- degrees (paper: 30)",
    "aug_scale": "scale augmentation, 1 +- this (paper: 0.2)",
    "aug_shift": "box-centre jitter, fraction of the face box",
    "aug_box_jitter": "log-normal sigma of the box-size jitter",
    "aug_flip": "mirror half the samples (off: 300W's x labels are not mirror-symmetric, MODEL_CARD.md)",
    "degrade": "input degradation protocol: mixed (12-64 px faces, blur/noise/JPEG), cctv (low light, motion/defocus "
               "blur, sensor noise, H.264/MPEG-4/MJPEG/JPEG), cctv-eval (noise 2 + H.264 CRF 28) or sht-m "
               "(256 -> 64 bicubic); train/degrade.py",
    "min_face_width": "mixed: smallest face width (px) inputs are degraded to",
    "max_face_width": "mixed: largest face width (px) inputs are degraded to",
    "blur_prob": "mixed: chance of a Gaussian blur before downscaling",
    "noise_prob": "mixed: chance of sensor-like noise on the small face",
    "jpeg_prob": "chance of compressing the small face (mixed: JPEG; cctv: a video codec or JPEG)",
    "light_prob": "cctv: chance of low light and a gamma curve",
    "occlude_prob": "chance of an occluder (hand, object, another face's patch) on part of the face",
    "composite_prob": "chance of pasting the face onto another picture's background (labelled faces)",
    "teacher": "teacher-labelled faces (300W layout, python -m train.label faces) mixed in with --data",
    "teacher_fraction": "dhln/sht: share of teacher-labelled faces in a batch (with --teacher)",
    "distill": "dhln: a trained DHLN (.safetensors, frozen) run on each input bicubically resized to its own input "
               "size; its decoded landmarks, as heatmaps at this model's size, are a second target (distillation)",
    "distill_weight": "dhln: weight of the distillation term against the label heatmaps' (with --distill)",
    "images": "sht: folders of unlabelled face photos (comma-separated) for image pairs (SHT-i)",
    "unlabelled_pairs": "sht: which unlabelled pairs: video (two frames of a clip, SHT-v), image (two rotations/scales "
                        "of one photo or video frame, SHT-i), both",
    "ema_decay": "dhln: ship and score an exponential moving average of the weights (e.g. 0.998); 0 = off",
    "loss_weights": "replace the paper's loss weights (train/losses.py LossWeights: heatmap, pixel, gradient, gan, "
                    "transfer_l1, perceptual), e.g. pixel=1,gradient=1; empty = the paper's",
}

CHOICES = {"degrade": ("mixed", "cctv", "cctv-eval", "sht-m"), "unlabelled_pairs": ("video", "image", "both")}


def _parser(prog: str = "python -m train") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("stage", choices=["dhln", "fptn", "sht"], help="dhln: Eq. 4; fptn: pose transfer; sht: Eq. 9-10")
    p.add_argument("--config", help="TOML or JSON file with TrainConfig keys")
    for f in dataclasses.fields(TrainConfig):
        if f.name == "stage":
            continue
        flag = "--" + f.name.replace("_", "-")
        helptext = f"{HELP[f.name]} (default: {f.default})"
        if f.type == "bool":
            p.add_argument(flag, action=argparse.BooleanOptionalAction, default=None, help=helptext)
        elif f.name == "val_widths":
            p.add_argument(flag, type=float, nargs="+", default=None, help=helptext)
        elif f.name in CHOICES:
            p.add_argument(flag, choices=CHOICES[f.name], default=None, help=helptext)
        else:
            typ = {"int": int, "float": float, "str": str}[f.type]
            p.add_argument(flag, type=typ, default=None, help=helptext)
    return p


def main(argv: list[str] | None = None, prog: str = "python -m train") -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "label":
        from .label import main as label_main

        return label_main(argv[1:])
    args = _parser(prog).parse_args(argv)
    overrides = {k: v for k, v in vars(args).items() if k not in ("stage", "config") and v is not None}
    if "val_widths" in overrides:
        overrides["val_widths"] = tuple(overrides["val_widths"])
    try:
        cfg = (TrainConfig.from_file(args.config, stage=args.stage, **overrides) if args.config
               else TrainConfig(stage=args.stage, **overrides))
    except ValueError as exc:      # a bad range or key: one line, as argparse reports its own errors
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2
    _logging()
    from .loops import STAGES

    from .readers import DatasetError

    from sht_model.errors import WeightsError

    rt = setup(cfg)
    try:
        STAGES[cfg.stage](cfg, rt)
    except (DatasetError, WeightsError, ValueError, OSError) as exc:
        # A data folder, image or weights file that is not what the flag says (also when a data-loading worker
        # met it: its message then ends with the worker's error): one line, no traceback. The steps finished
        # before it are checkpointed (--resume goes on).
        lines = [ln for ln in str(exc).strip().splitlines() if ln.strip()]
        print(f"{prog}: error: {lines[-1] if lines else exc.__class__.__name__}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{prog}: interrupted; the last checkpoint is kept (--resume goes on)", file=sys.stderr)
        return 130
    finally:
        teardown(rt)
    return 0


def _logging() -> None:
    try:
        from rich.logging import RichHandler

        handler = RichHandler(show_path=False, log_time_format="%H:%M:%S")
        logging.basicConfig(level=logging.INFO, format="%(message)s", handlers=[handler])
    except ImportError:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")


if __name__ == "__main__":
    sys.exit(main())
