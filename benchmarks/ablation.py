"""Does transfer help? The SHT ablation of the model card, from one command:

    python -m benchmarks.ablation --init runs/chain/cpu-rt-base/last.safetensors \
        --fptn-init runs/chain/cpu-rt-fptn/fptn.safetensors --steps 600 --runs runs/chain/ablation

Four arms continue from the same DHLN weights for the same number of optimiser steps, with the same rate,
schedule, augmentation and frozen BatchNorm (train/make_default_weights.sh gives the settings):

- `control`: DHLN alone (`train dhln`), given the same extra steps, with twice the batch (an SHT step sees both
  views of each pair, so both arms see as many faces per step);
- `sht`: SHT on labelled 300W rotation/scale pairs only (`train sht --unlabelled-fraction 0`);
- `sht-v`: + unlabelled pairs of two frames of one training clip (gamma1 = 0, Eq. 10);
- `sht-i`: + unlabelled image pairs (two rotations/scales of one photo or one video frame; the paper's SHT-i);
- `teacher`: DHLN alone on the labelled faces and the teacher-labelled ones (`--teacher`: dlib's landmarks of the
  unlabelled photos at full resolution, trained on at small sizes; `python -m train.label faces`);
- `teacher-sht`: SHT with the teacher-labelled faces as labelled pairs and both kinds of unlabelled pairs;
- `control-2`: the control again with the next seed (another data order and augmentation draw): how far two
  runs of one recipe land apart, the yardstick for the SHT arms' gains.

An arm whose run folder already holds its last step is not trained again; an interrupted one continues from its
checkpoint (`--resume`). Then every arm's last weights (no pick on held-out faces) are scored:

1. held-out 300W faces (human labels; train/data.py's split) at 16/24/32/64 px: NME, FR@0.08;
2. PSNR / SSIM of the hallucinated face against the HR face, beside bicubic upsampling of the same input (the
   paper's Table 1 question: does the hallucination stream hallucinate, or only copy its input?);
3. held-out clips (benchmarks.lowres, no smoothing): NME against the teacher;
4. the share of DHLN's gradient from each loss term, averaged over the run's logged steps (TensorBoard scalars
   `train/grad_share_*`);
5. each arm's gain over the control on the held-out faces (relative NME reduction, the issue's ">= 3% at 16 px"),
   with a 95% interval from a paired bootstrap over the faces: an interval that holds 0 is a gain these faces
   cannot tell from none. It covers the choice of faces, not training noise (control-2 gives one seed-to-seed
   difference of the control).
Writes benchmarks/results/ablation.json and the block between the markers in MODEL_CARD.md.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch

from train.common import evaluate_face_errors, summarise_errors
from train.data import NO_AUGMENT, LabelledFaces, split_records
from train.readers import read_300w

from .common import RESULTS, console, markdown_header, markdown_row, pct, read_scalars, replace_block, save, table

REPO = Path(__file__).resolve().parents[1]
CARD = REPO / "MODEL_CARD.md"
START, END = "<!-- ablation:start -->", "<!-- ablation:end -->"
WIDTHS = (16.0, 24.0, 32.0, 64.0)
ARMS = ("control", "sht", "sht-v", "sht-i", "teacher", "teacher-sht", "control-2")


def arm_command(arm: str, args) -> list[str]:
    """The `python -m train ...` command of one arm."""
    seed = args.seed + 1 if arm == "control-2" else args.seed
    common = ["--init", str(args.init), "--data", str(args.data), "--steps", str(args.steps), "--lr", str(args.lr),
              "--warmup", str(args.warmup), "--eval-every", str(args.steps), "--ckpt-every", str(args.ckpt_every),
              "--log-every", str(args.log_every), "--val-widths", *[str(int(w)) for w in WIDTHS], "--freeze-bn",
              "--seed", str(seed), "--threads", str(args.threads), "--val-fraction", str(args.val_fraction),
              "--out", str(Path(args.runs) / arm),
              "--resume", *args.train_args]
    if arm in ("control", "control-2", "teacher"):
        teacher = ["--teacher", str(args.teacher)] if arm == "teacher" else []
        return [sys.executable, "-m", "train", "dhln", *common, "--batch-size", str(2 * args.batch_size), *teacher]
    sht = [sys.executable, "-m", "train", "sht", *common, "--batch-size", str(args.batch_size),
           "--fptn-init", str(args.fptn_init), "--fptn-channels", str(args.fptn_channels),
           "--fptn-blocks", str(args.fptn_blocks)]
    if arm == "sht":
        return [*sht, "--unlabelled-fraction", "0"]
    pairs = {"sht-v": ["--videos", str(args.videos), "--unlabelled-pairs", "video"],
             "sht-i": ["--videos", str(args.videos), "--images", str(args.images), "--unlabelled-pairs", "image"],
             "teacher-sht": ["--teacher", str(args.teacher), "--videos", str(args.videos), "--images",
                             str(args.images), "--unlabelled-pairs", "both"]}
    return [*sht, *pairs[arm], "--unlabelled-fraction", str(args.unlabelled_fraction)]


def finished(run: Path, steps: int) -> bool:
    """The arm's last weights are its last step's (their metadata carries the step, written with state.pt), so
    a finished arm's folder needs no optimiser state."""
    from sht_model.weights import read_extra

    if not (run / "last.safetensors").exists():
        return False
    return int(read_extra(run / "last.safetensors").get("step", -1)) >= steps


def gain_over_control(control: np.ndarray, arm: np.ndarray, resamples: int = 2000, seed: int = 0) -> dict:
    """1 - mean(arm NME) / mean(control NME) over the same faces, and its 95% paired-bootstrap interval."""
    from scipy.stats import bootstrap

    def gain(c, a, axis=-1):
        return 1 - np.mean(a, axis=axis) / np.mean(c, axis=axis)

    ci = bootstrap((control, arm), gain, paired=True, vectorized=True, n_resamples=resamples, method="percentile",
                   random_state=np.random.default_rng(seed)).confidence_interval
    return {"relative": float(gain(control, arm)), "ci95": [float(ci.low), float(ci.high)]}


@torch.no_grad()
def hallucination_quality(model, records, widths, seed: int = 1234) -> dict:
    """PSNR (dB) and SSIM of the hallucinated face and of the bicubic-upsampled input against the HR face,
    on held-out faces degraded to each width (RGB, 0-255)."""
    import cv2
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    cfg = model.cfg
    model.eval()
    mean, std = np.array(cfg.mean), np.array(cfg.std)

    def rgb(t: torch.Tensor) -> np.ndarray:
        return np.clip((t.permute(1, 2, 0).numpy() * std + mean) * 255, 0, 255).astype(np.uint8)

    ds = LabelledFaces(records, cfg, aug=NO_AUGMENT, seed=seed)
    out = {}
    for width in widths:
        ds.face_width = float(width)
        scores = {"model": {"psnr": [], "ssim": []}, "bicubic": {"psnr": [], "ssim": []}}
        for start in range(0, len(ds), 64):
            items = [ds[i] for i in range(start, min(len(ds), start + 64))]
            faces = model(torch.stack([it["input"] for it in items])).face
            for item, face in zip(items, faces):
                target = rgb(item["face"])
                bicubic = cv2.resize(rgb(item["input"]), target.shape[:2][::-1], interpolation=cv2.INTER_CUBIC)
                for name, image in (("model", rgb(face)), ("bicubic", bicubic)):
                    scores[name]["psnr"].append(peak_signal_noise_ratio(target, image, data_range=255))
                    scores[name]["ssim"].append(structural_similarity(target, image, channel_axis=2, data_range=255))
        out[f"{int(width)}px"] = {name: {k: float(np.mean(v)) for k, v in s.items()} for name, s in scores.items()}
    return out


def gradient_shares(run: Path) -> dict:
    """Mean of each `train/grad_share_*` scalar over the run's logged steps, each step once even where a resumed
    arm logged it twice (TensorBoard event files)."""
    values: dict[str, list[float]] = {}
    for shares in read_scalars(run, "train/grad_share_").values():
        for term, share in shares.items():
            values.setdefault(term, []).append(share)
    return {k: float(np.mean(v)) for k, v in sorted(values.items())}


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m benchmarks.ablation", description=__doc__.split("\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    data = REPO.parent / "shared" / "data"
    p.add_argument("--init", type=Path, required=True, help="DHLN weights every arm starts from")
    p.add_argument("--fptn-init", type=Path, required=True, help="pretrained FPTN (train fptn) for the SHT arms")
    p.add_argument("--runs", type=Path, required=True, help="folder of the arms' run folders")
    p.add_argument("--arms", nargs="+", choices=ARMS, default=None,
                   help="default: every arm (the teacher arms only with --teacher)")
    p.add_argument("--steps", type=int, default=600, help="optimiser steps of every arm")
    p.add_argument("--batch-size", type=int, default=16, help="pairs per SHT step (the control takes twice as many faces)")
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--warmup", type=int, default=20)
    p.add_argument("--ckpt-every", type=int, default=100)
    p.add_argument("--log-every", type=int, default=25)
    p.add_argument("--seed", type=int, default=29)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--fptn-channels", type=int, default=32)
    p.add_argument("--fptn-blocks", type=int, default=4)
    p.add_argument("--unlabelled-fraction", type=float, default=0.3)
    p.add_argument("--data", type=Path, default=data / "300w_train")
    p.add_argument("--val-fraction", type=float, default=0.1, help="held-out share of --data (train/data.py)")
    p.add_argument("--videos", default=str(data / "videos"), help="folders of clips, comma-separated")
    p.add_argument("--images", default=str(data / "images"), help="folders of photos, comma-separated")
    p.add_argument("--teacher", type=Path, help="teacher-labelled faces (python -m train.label faces) for the "
                   "teacher arms")
    p.add_argument("--train-args", nargs=argparse.REMAINDER, default=[],
                   help="further `python -m train` flags for every arm (last on the line), e.g. --no-aug-flip")
    p.add_argument("--no-train", action="store_true", help="score the arms' run folders as they are")
    p.add_argument("--no-clips", action="store_true", help="skip the held-out clips")
    p.add_argument("--stride", type=int, default=2, help="clip frame stride for the clip numbers")
    p.add_argument("--name", default="ablation", help="results file (benchmarks/results/NAME.json)")
    p.add_argument("--no-card", action="store_true", help="do not rewrite MODEL_CARD.md's ablation block")
    p.add_argument("--ship", type=Path, help="copy the best arm's last weights here (lowest held-out NME at 16 px)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.arms is None:
        args.arms = [a for a in ARMS if args.teacher is not None or not a.startswith("teacher")]
    if args.teacher is None and any(a.startswith("teacher") for a in args.arms):
        parser().error("the teacher arms need --teacher")
    for arm in args.arms:
        run = args.runs / arm
        if args.no_train or finished(run, args.steps):
            continue
        cmd = arm_command(arm, args)
        console.print(f"[bold]{arm}[/]: {' '.join(cmd[1:])}")
        if subprocess.run(cmd, cwd=REPO).returncode != 0:
            console.print(f"[red]{arm}: training failed[/]")
            return 1

    from sht_model import load_model

    torch.set_num_threads(args.threads)
    _, val = split_records(read_300w(args.data), args.val_fraction)
    results = {"steps": args.steps, "init": str(args.init), "arms": {}}
    weights, errors = {}, {}
    for arm in args.arms:
        run = args.runs / arm
        path = run / "last.safetensors"
        if not finished(run, args.steps):
            console.print(f"[red]{arm}: {run} has not reached step {args.steps}[/]")
            return 1
        model = load_model(path)
        errors[arm] = evaluate_face_errors(model, val, WIDTHS, torch.device("cpu"))
        results["arms"][arm] = {"command": " ".join(arm_command(arm, args)[1:]),
                                "faces": summarise_errors(errors[arm]),
                                "hallucination": hallucination_quality(model, val, WIDTHS),
                                "gradient_shares": gradient_shares(run)}
        weights[arm] = path
    if "control" in errors:
        for arm in [a for a in errors if a != "control"]:
            results["arms"][arm]["gain_over_control"] = {
                w: gain_over_control(errors["control"][w], e) for w, e in errors[arm].items()}
    if not args.no_clips:
        from . import lowres

        lowres.main(["--weights", *[f"{a}={w}" for a, w in weights.items()], "--widths",
                     *[str(int(w)) for w in WIDTHS], "--stride", str(args.stride), "--smoothing", "none",
                     "--no-mediapipe", "--no-dlib", "--name", f"{args.name}_clips"])
        clips = json.loads((RESULTS / f"{args.name}_clips.json").read_text())
        for arm in weights:
            results["arms"][arm]["clips"] = {w: per[arm] for w, per in clips["results"].items()}
    results["faces"] = len(val)
    if args.ship:
        # Chosen on the held-out faces, which then also report its score (MODEL_CARD.md says so).
        best = min(results["arms"], key=lambda a: results["arms"][a]["faces"]["16px"]["nme"])
        args.ship.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(weights[best], args.ship)
        results["shipped"] = {"arm": best, "path": str(args.ship)}
        console.print(f"shipped {best}: {weights[best]} -> {args.ship}")
    save(args.name, results)
    rows = [[arm, w, f"{r['faces'][w]['nme']:.2%}", f"{r['faces'][w]['fr@0.08']:.1%}",
             f"{r['hallucination'][w]['model']['psnr']:.2f} / {r['hallucination'][w]['bicubic']['psnr']:.2f}",
             f"{r['hallucination'][w]['model']['ssim']:.3f} / {r['hallucination'][w]['bicubic']['ssim']:.3f}"]
            for arm, r in results["arms"].items() for w in r["faces"]]
    console.print(table(f"ablation, {args.steps} steps from {args.init}", ["arm", "width", "NME", "FR@0.08",
                        "PSNR model / bicubic", "SSIM model / bicubic"], rows))
    if not args.no_card:
        write_card(results)
    return 0


def write_card(results: dict) -> None:
    arms = results["arms"]
    widths = list(next(iter(arms.values()))["faces"])
    lines = [START, f"Every arm: {results['steps']} steps from the same weights, last step scored. Held-out 300W faces "
             f"({results['faces']}, human labels), NME / FR@0.08:", "",
             *markdown_header("arm", *widths)]
    for arm, r in arms.items():
        lines.append(markdown_row(arm, *(f"{pct(r['faces'][w]['nme'])} / {pct(r['faces'][w]['fr@0.08'], 1)}"
                                         for w in widths)))
    gains = {arm: r["gain_over_control"] for arm, r in arms.items() if "gain_over_control" in r}
    if gains:
        lines += ["", "Gain over the control on the same faces (relative NME reduction; 95% interval, paired bootstrap "
                  "over the faces, which does not cover training noise; `control-2`, the control with another seed, shows "
                  "that):", "",
                  *markdown_header("arm", *widths)]
        for arm, g in gains.items():
            lines.append(markdown_row(arm, *(
                f"{g[w]['relative']:+.2%} [{g[w]['ci95'][0]:+.2%}, {g[w]['ci95'][1]:+.2%}]" for w in widths)))
    lines += ["", "Hallucinated face against the HR face, PSNR (dB) / SSIM, model vs bicubic upsampling of its input:", "",
              *markdown_header("arm", *widths)]
    for arm, r in arms.items():
        h = r["hallucination"]
        lines.append(markdown_row(arm, *(
            f"{h[w]['model']['psnr']:.2f} / {h[w]['model']['ssim']:.3f} (bicubic {h[w]['bicubic']['psnr']:.2f} / "
            f"{h[w]['bicubic']['ssim']:.3f})" for w in widths)))
    if any("clips" in r for r in arms.values()):
        lines += ["", "Held-out clips against the teacher (no smoothing), NME / found:", "",
                  *markdown_header("arm", *widths)]
        for arm, r in arms.items():
            if "clips" in r:
                lines.append(markdown_row(arm, *(
                    f"{pct(r['clips'][w]['nme'])} / {pct(r['clips'][w]['found'], 1)}" for w in r["clips"])))
    lines += ["", "Share of DHLN's gradient norm per loss term (mean over logged steps):", ""]
    for arm, r in arms.items():
        lines.append(f"- {arm}: " + ", ".join(f"{k} {v:.3g}" for k, v in r["gradient_shares"].items()))
    if "shipped" in results:
        lines += ["", f"Chosen: `{results['shipped']['arm']}` (lowest held-out NME at 16 px), copied to "
                  f"`{results['shipped']['path']}`."]
    lines.append(END)
    replace_block(CARD, START, END, "\n".join(lines), heading="## SHT ablation")


if __name__ == "__main__":
    sys.exit(main())
