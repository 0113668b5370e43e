"""Why does (or doesn't) the transfer loss help landmarks? Three measurements on held-out 300W pairs:

    python -m benchmarks.transfer_probe --dhln runs/chain/cpu-rt-base/last.safetensors \
        --fptn runs/chain/ablation/sht/fptn.safetensors

1. Does FPTN move a face to a new pose? On the HR faces and true heatmaps of rotation/scale pairs (a, b):
   PSNR against face b of G(face a, heatmaps a, heatmaps b), of G(face a, heatmaps a, heatmaps a) (the pose
   input left at a's) and of face a itself (no move). If the first is no closer to b than the other two, the
   generator ignores its target pose, and the transfer L1 carries no pose information back to DHLN.
2. Which way does the transfer gradient reach DHLN, and does it point where the landmark loss points? On pairs
   degraded to --width px, as in `train sht` (DHLN's hallucinated face and heatmaps into FPTN): the norm of
   DHLN's gradient from the weighted transfer L1 through the face alone (heatmaps detached), through the
   heatmaps alone (face detached), against the heatmap loss's; and the cosine of each with the heatmap loss's
   gradient (the direction that lowers landmark error on these labelled pairs).
3. Is the hallucination stream alive? The share of the upsampling tail's ReLU outputs above zero on the probe's
   inputs: at 0 the tail outputs its last bias only, the face is the bicubic input plus a constant, and no
   face loss (pixel, Eq. 3, transfer through the face) reaches anything before it.
Writes benchmarks/results/transfer_probe.json.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from sht_model import load_model
from sht_model.fptn import FPTN, FPTNConfig
from train import losses
from train.data import Augment, LabelledPairs, split_records
from train.readers import read_300w

from .common import console, save, table

REPO = Path(__file__).resolve().parents[1]


def psnr(x: torch.Tensor, y: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """Per-sample PSNR (dB) of two normalised face batches, compared as RGB in [0, 1]."""
    x, y = (x * std + mean).clamp(0, 1), (y * std + mean).clamp(0, 1)
    mse = ((x - y) ** 2).flatten(1).mean(1).clamp_min(1e-10)
    return -10 * torch.log10(mse)


def flat_grad(term: torch.Tensor, params: list[torch.Tensor]) -> torch.Tensor:
    grads = torch.autograd.grad(term, params, retain_graph=True, allow_unused=True)
    return torch.cat([(g if g is not None else torch.zeros_like(p)).flatten() for g, p in zip(grads, params)])


def cosine(u: torch.Tensor, v: torch.Tensor) -> float:
    return float(torch.dot(u, v) / (u.norm() * v.norm()).clamp_min(1e-30))


def probe(dhln, fptn: FPTN, pairs: LabelledPairs, count: int, batch_size: int) -> dict:
    cfg = dhln.cfg
    mean, std = torch.tensor(cfg.mean).view(1, 3, 1, 1), torch.tensor(cfg.std).view(1, 3, 1, 1)
    w = losses.LossWeights()
    params = [p for p in dhln.parameters() if p.requires_grad]
    moved, unmoved, still = [], [], []
    g_heat, g_face, g_hm = 0, 0, 0
    dhln.eval()    # frozen BatchNorm, as the arms train (--freeze-bn)
    active = []
    hooks = [m.register_forward_hook(lambda mod, inp, out: active.append((out > 0).float().mean()))
             for m in dhln.tail.modules() if isinstance(m, (torch.nn.ReLU, torch.nn.LeakyReLU))]
    fptn.eval()
    for start in range(0, count, batch_size):
        items = [pairs[i] for i in range(start, min(count, start + batch_size))]
        a = {k: torch.stack([it["a"][k] for it in items]) for k in ("input", "face", "heatmaps")}
        b = {k: torch.stack([it["b"][k] for it in items]) for k in ("input", "face", "heatmaps")}
        with torch.no_grad():
            hm_a, hm_b = a["heatmaps"], b["heatmaps"]
            moved.append(psnr(fptn.generator(a["face"], hm_a, hm_b), b["face"], mean, std))
            unmoved.append(psnr(fptn.generator(a["face"], hm_a, hm_a), b["face"], mean, std))
            still.append(psnr(a["face"], b["face"], mean, std))
        # One direction (a -> b) of Eq. 9 through DHLN's own outputs, as train_sht feeds FPTN.
        out_a, out_b = dhln(a["input"]), dhln(b["input"])
        heat = w.heatmap * losses.heatmap_loss(out_a.heatmaps, a["heatmaps"]).mean()
        through_face = w.transfer_l1 * losses.pixel_loss(
            fptn.generator(out_a.face, out_a.heatmaps[-1].detach(), out_b.heatmaps[-1].detach()), b["face"]).mean()
        through_hm = w.transfer_l1 * losses.pixel_loss(
            fptn.generator(out_a.face.detach(), out_a.heatmaps[-1], out_b.heatmaps[-1]), b["face"]).mean()
        g_heat = g_heat + flat_grad(heat, params)
        g_face = g_face + flat_grad(through_face, params)
        g_hm = g_hm + flat_grad(through_hm, params)
    for hook in hooks:
        hook.remove()
    stat = {name: float(torch.cat(v).mean()) for name, v in
            (("psnr_moved", moved), ("psnr_pose_unchanged", unmoved), ("psnr_no_move", still))}
    return {**stat, "pairs": count, "tail_relu_active": float(torch.stack(active).mean()),
            "grad_norm": {"heatmap": float(g_heat.norm()), "transfer_l1_via_face": float(g_face.norm()),
                          "transfer_l1_via_heatmaps": float(g_hm.norm())},
            "cosine_with_heatmap": {"transfer_l1_via_face": cosine(g_face, g_heat),
                                    "transfer_l1_via_heatmaps": cosine(g_hm, g_heat)}}


def main(argv: list[str] | None = None) -> int:
    data = REPO.parent / "shared" / "data" / "300w_train"
    p = argparse.ArgumentParser(prog="python -m benchmarks.transfer_probe", description=__doc__.split("\n")[0])
    p.add_argument("--dhln", type=Path, required=True, help="DHLN weights (safetensors)")
    p.add_argument("--fptn", type=Path, required=True, help="FPTN weights (train fptn / train sht)")
    p.add_argument("--fptn-channels", type=int, default=32)
    p.add_argument("--fptn-blocks", type=int, default=4)
    p.add_argument("--data", type=Path, default=data)
    p.add_argument("--width", type=float, default=16.0, help="face width the pairs are degraded to (px)")
    p.add_argument("--pairs", type=int, default=64)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--name", default="transfer_probe")
    args = p.parse_args(argv)
    if not args.data.is_dir():
        raise SystemExit(f"{args.data}: 300W folder not found")
    from safetensors.torch import load_file

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    dhln = load_model(args.dhln)
    fptn = FPTN(FPTNConfig(face_size=dhln.cfg.face_size, channels=args.fptn_channels, num_blocks=args.fptn_blocks))
    fptn.load_state_dict(load_file(str(args.fptn)))
    _, val = split_records(read_300w(args.data), 0.1)
    # The arms' pairs: the paper's rotation/scale range, no mirroring.
    pairs = LabelledPairs(val, dhln.cfg, Augment(flip=False), seed=7, face_width=args.width)
    result = {"dhln": str(args.dhln), "fptn": str(args.fptn), "width": args.width,
              **probe(dhln, fptn, pairs, min(args.pairs, len(pairs)), args.batch_size)}
    save(args.name, result)
    console.print(table("FPTN on true pairs: PSNR against face b (dB)", ["G(a, H_a, H_b)", "G(a, H_a, H_a)", "a"],
                        [[f"{result['psnr_moved']:.2f}", f"{result['psnr_pose_unchanged']:.2f}",
                          f"{result['psnr_no_move']:.2f}"]]))
    g, c = result["grad_norm"], result["cosine_with_heatmap"]
    console.print(table(f"DHLN's gradient at {args.width:g} px ({result['pairs']} pairs)", ["term", "norm", "cosine"],
                        [["heatmap", f"{g['heatmap']:.4g}", "1"],
                         *[[k, f"{g[k]:.4g}", f"{c[k]:+.3f}"] for k in c]]))
    console.print(f"hallucination tail: {result['tail_relu_active']:.2%} of its ReLU outputs above zero")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
