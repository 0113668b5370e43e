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


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m train", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("stage", choices=["dhln", "fptn", "sht"])
    p.add_argument("--config", help="TOML or JSON file with TrainConfig keys")
    for f in dataclasses.fields(TrainConfig):
        if f.name == "stage":
            continue
        flag = "--" + f.name.replace("_", "-")
        if f.type == "bool":
            p.add_argument(flag, action=argparse.BooleanOptionalAction, default=None)
        elif f.name == "val_widths":
            p.add_argument(flag, type=float, nargs="+", default=None)
        else:
            typ = {"int": int, "float": float, "str": str}[f.type]
            p.add_argument(flag, type=typ, default=None)
    return p


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "label":
        from .label import main as label_main

        return label_main(argv[1:])
    args = _parser().parse_args(argv)
    overrides = {k: v for k, v in vars(args).items() if k not in ("stage", "config") and v is not None}
    if "val_widths" in overrides:
        overrides["val_widths"] = tuple(overrides["val_widths"])
    cfg = (TrainConfig.from_file(args.config, stage=args.stage, **overrides) if args.config
           else TrainConfig(stage=args.stage, **overrides))
    _logging()
    from .loops import STAGES

    rt = setup(cfg)
    try:
        STAGES[cfg.stage](cfg, rt)
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
