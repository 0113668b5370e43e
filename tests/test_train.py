"""train: readers, degradation, losses, metrics, every stage for a few steps, overfitting, DDP on gloo."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest
import torch

from tests.conftest import REPO, shared, write_video
from sht_model.weights import read_extra
from train import losses, metrics
from train.data import FLIP_68, NO_AUGMENT, Augment, LabelledFaces, LabelledPairs, split_records
from train.readers import (WFLW_TO_68, DatasetError, read_300vw, read_300w, read_pts, read_wflw, write_pts)


# ---------------------------------------------------------------- readers

def test_pts_round_trip_is_one_based_on_disk(tmp_path):
    xy = np.random.default_rng(0).uniform(0, 300, (68, 2)).astype(np.float32)
    write_pts(tmp_path / "a.pts", xy)
    text = (tmp_path / "a.pts").read_text().splitlines()
    assert text[:3] == ["version: 1", "n_points: 68", "{"]
    assert float(text[3].split()[0]) == pytest.approx(xy[0, 0] + 1, abs=1e-3)
    np.testing.assert_allclose(read_pts(tmp_path / "a.pts"), xy, atol=1e-3)


def test_pts_reader_on_real_annotations():
    xy = read_pts(shared("annotated", "takeo.pts"))
    assert xy.shape == (68, 2)


def test_pts_reader_rejects_wrong_count(tmp_path):
    (tmp_path / "b.pts").write_text("version: 1\nn_points: 68\n{\n1 2\n}\n")
    with pytest.raises(DatasetError, match="n_points says 68"):
        read_pts(tmp_path / "b.pts")


def test_300w_reader_and_splits(faces_300w, tmp_path):
    assert len(read_300w(faces_300w)) == 8
    with pytest.raises(DatasetError, match="no image"):
        read_300w(tmp_path)
    # common/challenging by folder names of the official release
    import shutil

    for folder in ("lfpw/testset", "helen/testset", "ibug"):
        (tmp_path / folder).mkdir(parents=True)
        src = sorted((faces_300w / "afw").glob("*.pts"))[0]
        shutil.copy(src, tmp_path / folder / src.name)
        shutil.copy(src.with_suffix(".jpg"), tmp_path / folder / src.with_suffix(".jpg").name)
    assert len(read_300w(tmp_path, "common")) == 2
    assert len(read_300w(tmp_path, "challenging")) == 1
    assert len(read_300w(tmp_path, "full")) == 3


def test_300vw_reader_on_real_fixture():
    records = read_300vw(shared("fixtures", "mmpose_testdata", "300vw"))
    assert len(records) == 4 and all(r.landmarks.shape == (68, 2) for r in records)


def test_300vw_reader_with_video_layout(tmp_path):
    clip = tmp_path / "007"
    (clip / "annot").mkdir(parents=True)
    (clip / "vid.avi").write_bytes(b"")
    write_pts(clip / "annot" / "000003.pts", np.zeros((68, 2)))
    [record] = read_300vw(tmp_path)
    assert record.frame_index == 2 and record.image.name == "vid.avi"
    write_pts(clip / "annot" / "frame.pts", np.zeros((68, 2)))
    with pytest.raises(DatasetError, match="numbered"):
        read_300vw(tmp_path)


def test_wflw_reader_maps_98_to_68(tmp_path):
    coords = np.arange(196, dtype=np.float32)
    line = " ".join(map(str, coords)) + " 1 2 3 4 0 0 0 0 0 0 7--Cheering/img.jpg"
    (tmp_path / "list.txt").write_text(line + "\n")
    [record] = read_wflw(tmp_path / "list.txt", tmp_path)
    assert record.landmarks.shape == (68, 2) and len(set(WFLW_TO_68.tolist())) == 68
    np.testing.assert_array_equal(record.landmarks[0], [0, 1])          # jaw starts at WFLW 0
    np.testing.assert_array_equal(record.landmarks[67], [190, 191])     # last mouth point is WFLW 95
    (tmp_path / "bad.txt").write_text("1 2 3\n")
    with pytest.raises(DatasetError, match="207 fields"):
        read_wflw(tmp_path / "bad.txt", tmp_path)


def test_flip_permutation_is_an_involution():
    assert sorted(FLIP_68.tolist()) == list(range(68))
    np.testing.assert_array_equal(FLIP_68[FLIP_68], np.arange(68))


# ---------------------------------------------------------------- samples, losses, metrics

def test_samples_and_pairs(faces_300w):
    from sht_model.config import get_config

    cfg = get_config("test")
    records = read_300w(faces_300w)
    sample = LabelledFaces(records, cfg, NO_AUGMENT, face_width=16.0)[0]
    assert sample["input"].shape == (3, 64, 64) and sample["face"].shape == (3, 32, 32)
    assert sample["heatmaps"].shape == (68, 16, 16)
    width = sample["landmarks"][:, 0].max() - sample["landmarks"][:, 0].min()
    assert 30 < width < 64   # the face fills the crop like the tracker's crops do
    pair = LabelledPairs(records, cfg, seed=1)[0]
    assert not torch.allclose(pair["a"]["input"], pair["b"]["input"])


def test_validation_split_is_deterministic_and_disjoint():
    records = read_300w(shared("300w_train"))
    train, val = split_records(records)
    again_train, again_val = split_records(records)
    assert [r.image for r in val] == [r.image for r in again_val]
    assert not {r.image for r in train} & {r.image for r in val}
    assert 0.07 < len(val) / len(records) < 0.13


def test_gradient_loss_is_zero_for_identical_and_positive_otherwise():
    a = torch.rand(2, 3, 16, 16)
    assert losses.gradient_loss(a, a).abs().max() < 1e-6
    assert losses.gradient_loss(a, torch.rand(2, 3, 16, 16)).min() > 0


def test_loss_terms_are_the_equations_norms():
    """Every norm is summed over a sample's elements and averaged over the batch (train/losses.py)."""
    hm, target_hm = [torch.rand(2, 68, 8, 8)] * 2, torch.rand(2, 68, 8, 8)
    face, target = torch.rand(2, 3, 16, 16), torch.rand(2, 3, 16, 16)
    terms = losses.dhln_terms(hm, face, target_hm, target, losses.LossWeights())
    torch.testing.assert_close(terms["heatmap"], ((hm[0] - target_hm) ** 2).sum() / 2)
    torch.testing.assert_close(terms["pixel"], 0.01 * (face - target).abs().sum() / 2)
    # Half the batch unlabelled: gamma1 = 0 for those samples, the batch average still over all of them.
    half = losses.dhln_terms(hm, face, target_hm, target, losses.LossWeights(), torch.tensor([1.0, 0.0]))
    torch.testing.assert_close(half["heatmap"], ((hm[0][0] - target_hm[0]) ** 2).sum() / 2)


def test_gradient_shares_split_by_term():
    x = torch.ones(3, requires_grad=True)
    shares = losses.gradient_shares([x], {"a": (3 * x).sum(), "b": x.sum(), "c": torch.zeros(())})
    assert shares == pytest.approx({"a": 0.75, "b": 0.25, "c": 0.0})


def test_unlabelled_pairs_drop_the_heatmap_term():
    hm = [torch.rand(2, 68, 8, 8)]
    face, target = torch.rand(2, 3, 16, 16), torch.rand(2, 3, 16, 16)
    w = losses.LossWeights()
    _, labelled = losses.dhln_loss(hm, face, torch.zeros(2, 68, 8, 8), target, w, torch.tensor([1.0, 1.0]))
    _, unlabelled = losses.dhln_loss(hm, face, torch.zeros(2, 68, 8, 8), target, w, torch.tensor([0.0, 0.0]))
    assert labelled["heatmap"] > 0 and unlabelled["heatmap"] == 0


def test_nme_normalisations_and_auc():
    gt = np.zeros((1, 68, 2))
    gt[0, :, 0] = np.linspace(0, 100, 68)
    gt[0, 36], gt[0, 45] = (0, 0), (50, 0)
    pred = gt + np.array([3.0, 4.0])            # every point off by 5 px
    assert metrics.nme(pred, gt)[0] == pytest.approx(0.1)
    assert metrics.nme(pred, gt, "width")[0] == pytest.approx(0.05)
    auc, fr = metrics.auc_fr(np.array([0.0, 0.0, 1.0]), 0.08)
    assert fr == pytest.approx(1 / 3) and auc == pytest.approx(2 / 3, abs=0.01)


def test_psnr_ssim_y():
    img = np.random.default_rng(0).integers(0, 255, (32, 32, 3)).astype(np.uint8)
    assert metrics.psnr_y(img, img) == float("inf")
    assert metrics.ssim_y(img, img) == pytest.approx(1.0)
    assert metrics.psnr_y(img, 255 - img) < 10


# ---------------------------------------------------------------- stages

def _train(*args, env=None, timeout=600):
    return subprocess.run([sys.executable, "-m", "train", *args], capture_output=True, text=True, cwd=REPO,
                          timeout=timeout, env={**os.environ, **(env or {})})


@pytest.mark.slow
def test_dhln_stage_runs_checkpoints_and_resumes(faces_300w, tmp_path):
    out = tmp_path / "run"
    common = ["dhln", "--preset", "test", "--data", str(faces_300w), "--batch-size", "4", "--workers", "0",
              "--eval-every", "2", "--ckpt-every", "2", "--out", str(out), "--val-fraction", "0.3"]
    proc = _train(*common, "--steps", "2")
    assert proc.returncode == 0, proc.stderr
    assert (out / "last.safetensors").exists() and (out / "state.pt").exists()
    assert list((out / "tb").iterdir()), "TensorBoard event files expected"
    # The run's clock continues from the checkpoint's: a resumed chain step reports its whole wall time.
    state = torch.load(out / "state.pt", weights_only=True)
    assert 0 < state["seconds"] < 600
    state["seconds"] = 5000.0
    torch.save(state, out / "state.pt")
    proc = _train(*common, "--steps", "4", "--resume")
    assert proc.returncode == 0, proc.stderr
    assert "resumed" in proc.stderr + proc.stdout and "step 3" in proc.stderr + proc.stdout
    assert 5000 < torch.load(out / "state.pt", weights_only=True)["seconds"] < 5600
    assert 5000 < read_extra(out / "last.safetensors")["seconds"] < 5600


class _IndexedSamples(torch.utils.data.Dataset):
    """Samples that say which epoch and index they were drawn for, as LabelledFaces' draws depend on both."""
    epoch = 0

    def __len__(self):
        return 7

    def __getitem__(self, i):
        return torch.tensor([self.epoch, i])


def test_resumed_batches_continue_where_the_uninterrupted_run_was():
    """A run resumed at step k trains on batch k, k+1, ... of the uninterrupted run: same indices, same epoch
    (so the same augmentation draw), across epoch ends (7 samples in batches of 3, the last one dropped)."""
    from train.common import Runtime, TrainConfig
    from train.loops import _batches

    cfg, rt = TrainConfig(batch_size=3, workers=0, seed=5), Runtime(torch.device("cpu"))
    uninterrupted = [b.tolist() for b, _ in zip(_batches(_IndexedSamples(), cfg, rt), range(9))]
    assert len({tuple(map(tuple, b)) for b in uninterrupted}) == 9        # shuffled anew every epoch
    for start in (1, 2, 5):
        resumed = [b.tolist() for b, _ in zip(_batches(_IndexedSamples(), cfg, rt, start=start), range(9 - start))]
        assert resumed == uninterrupted[start:]


@pytest.mark.slow
def test_a_stopped_and_resumed_run_ends_with_the_uninterrupted_runs_weights(faces_300w, tmp_path):
    """--stop-after, then --resume: bit for bit the weights of the run that was never stopped (the weights chain
    runs for hours and may be interrupted anywhere)."""
    common = ["dhln", "--preset", "test", "--data", str(faces_300w), "--batch-size", "2", "--workers", "0",
              "--steps", "6", "--warmup", "1", "--lr", "1e-3", "--eval-every", "100", "--ckpt-every", "100",
              "--val-fraction", "0.3", "--no-aug-flip", "--resume"]
    assert _train(*common, "--out", str(tmp_path / "whole")).returncode == 0
    stopped = _train(*common, "--stop-after", "4", "--out", str(tmp_path / "split"))
    assert stopped.returncode == 0, stopped.stderr
    assert read_extra(tmp_path / "split" / "last.safetensors")["step"] == 4
    # An evaluation before the stop that no later one beats: the resumed run must not replace it.
    best = {"step": 2, "val": {"16px": {"nme": 1e-6, "fr": 0.0}, "32px": {"nme": 1e-6, "fr": 0.0}}}
    (tmp_path / "split" / "best_val.json").write_text(json.dumps(best))
    assert _train(*common, "--out", str(tmp_path / "split")).returncode == 0
    assert json.loads((tmp_path / "split" / "best_val.json").read_text()) == best
    from safetensors.torch import load_file

    whole, split = load_file(tmp_path / "whole" / "last.safetensors"), load_file(tmp_path / "split" / "last.safetensors")
    assert whole.keys() == split.keys()
    assert all(torch.equal(whole[k], split[k]) for k in whole)


@pytest.mark.slow
def test_dhln_ema_ships_the_averaged_weights(faces_300w, tmp_path):
    """--ema-decay: last.safetensors holds the moving average, which lags the live weights (kept in state.pt)."""
    from sht_model import build_model, load_model, save_model

    init = save_model(build_model("test"), tmp_path / "init.safetensors")
    out = tmp_path / "run"
    proc = _train("dhln", "--init", str(init), "--data", str(faces_300w), "--batch-size", "4", "--workers", "0",
                  "--steps", "4", "--warmup", "1", "--lr", "1e-3", "--ema-decay", "0.9", "--eval-every", "4",
                  "--ckpt-every", "4", "--out", str(out), "--val-fraction", "0.3", "--no-aug-flip")
    assert proc.returncode == 0, proc.stderr
    assert json.loads((out / "config.json").read_text())["aug_flip"] is False
    start = load_model(init).state_dict()
    averaged = load_model(out / "last.safetensors").state_dict()
    live = torch.load(out / "state.pt", weights_only=True)["modules"]["live"]
    name = "stem_q.0.weight"

    def dist(a, b):
        return float((a[name] - b[name]).norm())

    assert dist(averaged, live) > 0
    assert dist(averaged, start) < dist(live, start)


def test_freeze_batchnorm_keeps_running_statistics_but_weights_learn():
    import torch

    from sht_model import build_model
    from train.common import freeze_batchnorm

    model = build_model("test").train()
    bn = next(m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d))
    before_mean, before_weight = bn.running_mean.clone(), bn.weight.detach().clone()
    freeze_batchnorm(model)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    out = model(torch.randn(2, 3, model.cfg.input_size, model.cfg.input_size) * 3 + 1)
    out.heatmaps[-1].square().mean().backward()
    opt.step()
    assert torch.equal(bn.running_mean, before_mean)          # statistics fixed
    assert not torch.equal(bn.weight.detach(), before_weight)  # affine weights still trained
    model.train()
    model(torch.randn(2, 3, model.cfg.input_size, model.cfg.input_size) * 3 + 1)
    assert not torch.equal(bn.running_mean, before_mean)      # the control: unfrozen, they move


@pytest.mark.slow
def test_init_partial_starts_one_stack_model_at_the_first_stack(faces_300w, tmp_path):
    """--init-partial: a 1-stack model built from a 2-stack one predicts exactly what its first stack did."""
    import torch

    from sht_model import build_model, load_model, save_model
    from train.common import transplant

    big = build_model("test").eval()
    small = transplant(big, build_model("test", num_stacks=1)).eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert torch.allclose(small(x).heatmaps[-1], big(x).heatmaps[0], atol=1e-6)
    with pytest.raises(ValueError, match="not a smaller version"):
        transplant(big, build_model("cpu-rt"))
    # Through the CLI: cpu-rt weights into the cpu-fast preset (one stack), two steps.
    init = save_model(build_model("cpu-rt"), tmp_path / "rt.safetensors")
    proc = _train("dhln", "--preset", "cpu-fast", "--init", str(init), "--init-partial", "--data", str(faces_300w),
                  "--batch-size", "2", "--workers", "0", "--steps", "2", "--eval-every", "2", "--ckpt-every", "2",
                  "--out", str(tmp_path / "run"), "--val-fraction", "0.3")
    assert proc.returncode == 0, proc.stderr
    assert "init-partial" in proc.stderr + proc.stdout
    assert load_model(tmp_path / "run" / "last.safetensors").cfg.num_stacks == 1


@pytest.mark.slow
def test_fptn_and_sht_stages_run(faces_300w, tmp_path):
    from tests.conftest import astronaut_scene

    videos = tmp_path / "videos"
    write_video(videos / "talk.mp4", astronaut_scene(12, lambda i: [(200 + i, 200)], 150, size=(400, 400)))
    fptn_out = tmp_path / "fptn"
    base = ["--preset", "test", "--data", str(faces_300w), "--batch-size", "2", "--workers", "0",
            "--fptn-channels", "8", "--fptn-blocks", "1", "--steps", "2", "--val-fraction", "0.3"]
    proc = _train("fptn", *base, "--out", str(fptn_out))
    assert proc.returncode == 0, proc.stderr
    assert "WITHOUT the perceptual term" in proc.stderr + proc.stdout
    proc = _train("sht", *base, "--out", str(tmp_path / "sht"), "--videos", str(videos),
                  "--fptn-init", str(fptn_out / "fptn.safetensors"), "--freeze-bn")
    assert proc.returncode == 0, proc.stderr
    assert "unlabelled video pairs" in proc.stderr + proc.stdout
    assert (tmp_path / "sht" / "last.safetensors").exists()
    # With (stand-in) teacher labels in the 300VW layout: labelled video pairs plus the same frames unlabelled.
    annot = tmp_path / "labels" / "talk" / "annot"
    annot.mkdir(parents=True)
    angles = np.linspace(0, 2 * np.pi, 68, endpoint=False)
    for number in (1, 4, 7, 10):
        write_pts(annot / f"{number:06d}.pts", np.stack([200 + 60 * np.cos(angles), 200 + 70 * np.sin(angles)], 1))
    proc = _train("sht", *base, "--out", str(tmp_path / "sht2"), "--videos", str(videos),
                  "--video-labels", str(tmp_path / "labels"), "--log-every", "1")
    log = proc.stderr + proc.stdout
    assert proc.returncode == 0, proc.stderr
    assert "teacher-labelled video frames" in log and "unlabelled video pairs" in log
    # SHT-i: image pairs from a photo folder and the clip's frames, under the paper's SHT-M degradation.
    photos = tmp_path / "photos"
    photos.mkdir()
    cv2.imwrite(str(photos / "one.jpg"), astronaut_scene(1, lambda i: [(200, 200)], 150, size=(400, 400))[0])
    proc = _train("sht", *base, "--out", str(tmp_path / "sht3"), "--videos", str(videos), "--images", str(photos),
                  "--unlabelled-pairs", "image", "--degrade", "sht-m", "--fptn-init", str(fptn_out / "fptn.safetensors"))
    log = proc.stderr + proc.stdout
    assert proc.returncode == 0, proc.stderr
    assert "unlabelled image pairs" in log and "unlabelled video pairs" not in log
    assert json.loads((tmp_path / "sht3" / "config.json").read_text())["degrade"] == "sht-m"


@pytest.mark.slow
def test_dhln_overfits_a_tiny_set(faces_300w):
    """Loss must fall on 4 fixed faces: the loop, losses and targets fit together."""
    from sht_model import build_model
    from sht_model.config import get_config

    torch.manual_seed(0)
    cfg = get_config("test")
    ds = LabelledFaces(read_300w(faces_300w)[:4], cfg, NO_AUGMENT, face_width=32.0)
    batch = {k: torch.stack([ds[i][k] for i in range(4)]) for k in ("input", "face", "heatmaps")}
    model = build_model("test")
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    history = []
    for _ in range(60):
        out = model(batch["input"])
        loss, _ = losses.dhln_loss(out.heatmaps, out.face, batch["heatmaps"], batch["face"], losses.LossWeights())
        opt.zero_grad()
        loss.backward()
        opt.step()
        history.append(loss.item())
    print(f"overfit loss {history[0]:.3f} -> {history[-1]:.3f}")
    assert history[-1] < 0.3 * history[0]


@pytest.mark.slow
def test_ddp_two_processes_on_gloo(faces_300w, tmp_path):
    out = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-port", "29533",
           "-m", "train", "dhln", "--preset", "test", "--data", str(faces_300w), "--batch-size", "2",
           "--workers", "0", "--steps", "2", "--out", str(out), "--threads", "1", "--val-fraction", "0.3"]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert (out / "last.safetensors").exists()
    assert json.loads((out / "config.json").read_text())["preset"] == "test"


RANK_SCRIPT = """
import os, sys
import torch
from safetensors.torch import save_file
from train import common, loops
from train.common import TrainConfig, unwrap

rank = int(os.environ["RANK"])
kept = {}
def keep(cfg, rt, step, modules, optimizers, extra):
    # Parameters (not BatchNorm buffers, which each process updates on its own batch) of every module.
    kept.update({f"{k}.{n}": p.detach().contiguous().clone() for k, m in modules.items()
                 for n, p in unwrap(m).named_parameters()})
loops.save_checkpoint = keep
stage = sys.argv[3]
cfg = TrainConfig(stage=stage, preset="test", data=sys.argv[1], batch_size=2, workers=0, steps=2, threads=1,
                  val_fraction=0.3, fptn_channels=8, fptn_blocks=1, out=sys.argv[2], eval_every=100)
rt = common.setup(cfg)
loops.STAGES[stage](cfg, rt)
save_file(kept, os.path.join(sys.argv[2], f"rank{rank}.safetensors"))
common.teardown(rt)
"""


@pytest.mark.slow
@pytest.mark.parametrize("stage, port", [("dhln", 29535), ("fptn", 29536), ("sht", 29534)])
def test_every_stage_under_ddp_keeps_its_modules_identical_across_processes(faces_300w, tmp_path, stage, port):
    """Two processes on gloo see different samples; every gradient (DHLN's, FPTN's generator's and its
    discriminators') must be averaged, so after two steps both hold the same parameters."""
    from safetensors.torch import load_file

    script = tmp_path / "rank.py"
    script.write_text(RANK_SCRIPT)
    out = tmp_path / "ddp"
    out.mkdir()
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-port", str(port),
           str(script), str(faces_300w), str(out), stage]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, timeout=600,
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    assert proc.returncode == 0, proc.stderr[-3000:]
    ranks = [load_file(str(out / f"rank{r}.safetensors")) for r in (0, 1)]
    if stage != "dhln":
        assert any(k.startswith("fptn.") and ".d_shape." in f".{k}" for k in ranks[0]), list(ranks[0])[:5]
    if stage != "fptn":
        assert any(k.startswith("dhln.") for k in ranks[0])
    differ = [k for k in ranks[0] if not torch.allclose(ranks[0][k], ranks[1][k], atol=1e-6)]
    assert not differ, differ[:5]


def test_every_train_flag_has_help():
    import argparse

    from train.__main__ import _parser

    parser = _parser("shtrack train")
    actions = [a for a in parser._actions if not isinstance(a, argparse._HelpAction)]
    assert all(a.help for a in actions), [a.dest for a in actions if not a.help]
    assert parser.format_usage().startswith("usage: shtrack train")


def _fptn_and_dhln():
    from sht_model import build_model
    from sht_model.fptn import FPTN, FPTNConfig

    torch.manual_seed(0)
    dhln = build_model("test")
    return dhln, FPTN(FPTNConfig(face_size=dhln.cfg.face_size, channels=8, num_blocks=1))


def test_a_transfer_step_moves_the_pose_stream():
    """Eq. 9: the transfer loss alone (an unlabelled pair) changes DHLN's hourglass, through the heatmaps
    FPTN is conditioned on."""
    from train.loops import _generator_loss

    dhln, fptn = _fptn_and_dhln()
    x_a, x_b = torch.randn(2, 3, 64, 64), torch.randn(2, 3, 64, 64)
    face_b = torch.rand(2, 3, dhln.cfg.face_size, dhln.cfg.face_size) * 2 - 1
    out_a, out_b = dhln(x_a), dhln(x_b)
    terms, _, _ = _generator_loss(fptn, None, out_a.face, out_a.heatmaps[-1], out_b.heatmaps[-1], face_b,
                                  losses.LossWeights())
    hourglass = list(dhln.stacks[0].hourglass.parameters())
    grads = torch.autograd.grad(terms["l1"], hourglass, retain_graph=True, allow_unused=True)
    assert sum(float(g.abs().sum()) for g in grads if g is not None) > 0
    before = [p.detach().clone() for p in hourglass]
    opt = torch.optim.AdamW(dhln.parameters(), lr=1e-3)
    sum(terms.values()).backward()
    opt.step()
    change = sum(float((p.detach() - q).abs().sum()) for p, q in zip(hourglass, before)) / sum(float(q.abs().sum()) for q in before)
    assert change > 1e-4, change


def test_the_adversarial_term_does_not_reach_dhln_through_the_discriminators_conditions():
    from train.loops import _generator_loss

    dhln, fptn = _fptn_and_dhln()
    size = dhln.cfg.face_size
    constant = torch.zeros(2, 3, size, size, requires_grad=True)
    fptn.generator.forward = lambda face, cond, target: constant * 1.0    # the fake ignores its inputs
    cond_face = torch.rand(2, 3, size, size, requires_grad=True)
    target_hm = torch.rand(2, 68, 16, 16, requires_grad=True)
    terms, _, _ = _generator_loss(fptn, None, cond_face, torch.rand(2, 68, 16, 16), target_hm,
                                  torch.rand(2, 3, size, size), losses.LossWeights())
    grads = torch.autograd.grad(terms["gan"], [cond_face, target_hm, constant], allow_unused=True)
    assert grads[0] is None and grads[1] is None, "D_A's condition face and D_S's heatmaps are detached"
    assert grads[2] is not None and float(grads[2].abs().sum()) > 0, "the fake still gets the GAN gradient"


def test_video_pairs_are_two_different_frames_from_anywhere_in_the_clip():
    from sht_model import build_model
    from train.video import VideoPairs

    frames = [(np.full((4, 4, 3), k, np.uint8), None, None) for k in range(40)]
    pairs = VideoPairs("unused", build_model("test").cfg, clips=[frames])
    pairs._sample = lambda image, box, xy, rng, width, flip: {"frame": int(image[0, 0, 0])}
    drawn = [(p["a"]["frame"], p["b"]["frame"]) for p in (pairs[i] for i in range(len(pairs)) for _ in range(3))]
    assert all(a != b for a, b in drawn)
    assert max(abs(a - b) for a, b in drawn) > 30, "pairs span the clip, not a window"


def test_image_pairs_are_two_poses_of_one_unlabelled_face():
    from sht_model import build_model
    from train.video import ImagePairs

    cfg = build_model("test").cfg
    rng = np.random.default_rng(0)
    faces = [(rng.integers(0, 255, (256, 256, 3), dtype=np.uint8), np.array([78, 78, 178, 178], np.float32), None)
             for _ in range(2)]
    pairs = ImagePairs(faces, cfg, aug=Augment(flip=False))
    pair = pairs[0]
    assert float(pair["labelled"]) == 0.0
    assert not pair["a"]["heatmaps"].any() and torch.isnan(pair["a"]["landmarks"]).all()
    assert float(pair["a"]["face_width"]) == float(pair["b"]["face_width"])       # one degradation width
    assert not torch.equal(pair["a"]["face"], pair["b"]["face"]), "two random rotations/scales"
    # Both views come from the same photo: they correlate far more with each other than with the other photo.
    other = pairs[1]["a"]["face"]
    corr = lambda x, y: float(torch.corrcoef(torch.stack([x.flatten(), y.flatten()]))[0, 1])  # noqa: E731
    assert corr(pair["a"]["face"], pair["b"]["face"]) > corr(pair["a"]["face"], other) + 0.1


def test_sht_m_degradation_is_a_bicubic_resize_of_the_crop_and_settable_from_the_cli(tmp_path, capsys):
    from train.common import TrainConfig
    from train.degrade import DegradeConfig, degrade

    hr = np.random.default_rng(1).integers(0, 255, (256, 256, 3), dtype=np.uint8)
    out = degrade(hr, 100.0, 12.0, 64, np.random.default_rng(0), DegradeConfig("sht-m"))
    np.testing.assert_array_equal(out, cv2.resize(hr, (64, 64), interpolation=cv2.INTER_CUBIC))
    mixed = degrade(hr, 100.0, 12.0, 64, np.random.default_rng(0), DegradeConfig())
    assert not np.array_equal(mixed, out)
    cfg = TrainConfig(degrade="sht-m", blur_prob=0.0).degrade_config()
    assert cfg.protocol == "sht-m" and cfg.blur_prob == 0.0
    from train.__main__ import main

    for bad, says in ((["--degrade", "sht-x"], "invalid choice"),
                      (["--min-face-width", "40", "--max-face-width", "20"], "face widths must satisfy"),
                      (["--jpeg-prob", "2"], "jpeg_prob must be in [0, 1]")):
        try:
            code = main(["dhln", *bad, "--out", str(tmp_path / "never")])
        except SystemExit as exc:       # argparse's own errors
            code = exc.code
        err = capsys.readouterr().err
        assert code == 2 and says in err and "Traceback" not in err, err
    assert not (tmp_path / "never").exists()


def test_bad_data_folders_are_one_line_errors(tmp_path, capsys):
    from train.__main__ import main

    empty = tmp_path / "photos"
    empty.mkdir()
    for argv, says in ((["dhln", "--data", str(tmp_path / "nope")], "not a directory"),
                       (["sht", "--data", str(REPO.parent / "shared/data/300w_train"), "--images", str(tmp_path / "nope"),
                         "--unlabelled-pairs", "image", "--max-records", "4"], "not a directory"),
                       (["sht", "--data", str(REPO.parent / "shared/data/300w_train"), "--images", str(empty),
                         "--unlabelled-pairs", "image", "--max-records", "4"], "no face found")):
        if "300w_train" in " ".join(argv):
            shared("300w_train")
        assert main([*argv, "--out", str(tmp_path / "run"), "--steps", "1", "--workers", "0"]) == 2
        err = capsys.readouterr().err
        assert says in err and "Traceback" not in err, err


def test_sht_pairs_follow_the_flip_setting_for_every_source(faces_300w, tmp_path):
    from sht_model import build_model
    from train.common import TrainConfig
    from train.loops import _sht_pairs
    from train.video import ImagePairs, VideoPairs

    frames = [(np.full((256, 256, 3), k, np.uint8), np.array([78, 78, 178, 178], np.float32), None) for k in range(4)]
    cfg = TrainConfig(stage="sht", data=str(faces_300w), videos="unused", unlabelled_pairs="both", aug_flip=False)
    original = VideoPairs.__init__

    def from_memory(self, root, dhln_cfg, **kw):       # no decoding: two stand-in clips
        original(self, root, dhln_cfg, **{**kw, "clips": kw.get("clips") or [frames, frames]})

    VideoPairs.__init__ = from_memory
    try:
        data = _sht_pairs(cfg, read_300w(faces_300w), build_model("test").cfg)
    finally:
        VideoPairs.__init__ = original
    kinds = {type(d) for d in data.datasets}
    assert VideoPairs in kinds and ImagePairs in kinds
    assert all(not d.aug.flip for d in data.datasets)


def test_every_command_of_the_weights_chain_parses(tmp_path):
    """train/make_default_weights.sh: each step's flags are ones its program knows (a typo there would only show
    hours into the chain)."""
    import shlex

    from benchmarks import ablation
    from train.__main__ import _parser

    text = (REPO / "train" / "make_default_weights.sh").read_text().replace("\\\n", " ")
    values = {"DATA": "../shared/data", "RUNS": "runs/chain", "ASSETS": "tracker/assets", "THREADS": "2",
              "1": "cpu-rt"}
    for line in text.splitlines():
        name, _, value = line.partition("=")
        if line and not line.startswith(("#", " ")) and name.isupper() and value.startswith('"'):
            values[name] = value.strip('"')
    commands = []
    for line in text.splitlines():
        words = line.split()
        if words[:1] == ["step"]:
            words = words[2:]                       # step NAME COMMAND...
        if words[:3] not in (["python", "-m", "train"], ["python", "-m", "benchmarks.ablation"]) \
                and words[:2] != ["shtrack", "export"]:
            continue
        line = " ".join(words)
        for key, value in sorted(values.items(), key=lambda kv: -len(kv[0])):
            line = line.replace(f"${key}", value)
        commands.append(shlex.split(line))
    programs = [c[:3] if c[0] == "python" else c[:2] for c in commands]
    assert ["python", "-m", "train"] in programs and ["python", "-m", "benchmarks.ablation"] in programs
    assert ["shtrack", "export"] in programs
    for command in commands:
        if command[:3] == ["python", "-m", "train"]:
            _parser().parse_args(command[3:])
        elif command[:3] == ["python", "-m", "benchmarks.ablation"]:
            ablation.parser().parse_args(command[3:])
        else:
            from tracker.cli import export_parser

            export_parser().parse_args(command[2:])


def test_weights_chain_skips_the_steps_its_log_records_as_finished(tmp_path):
    """A finished step is not run again (its folder may then hold only what later steps read). Runs the real
    script in a temporary folder, with `python` and `shtrack` on PATH replaced by a recorder."""
    import os
    import shutil

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for program in ("python", "shtrack"):
        (bin_dir / program).write_text(f'#!/bin/sh\necho "{program} $*" >> "$CALLS"\n')
        (bin_dir / program).chmod(0o755)
    runs = tmp_path / "runs"
    (runs / "teacher").mkdir(parents=True)
    (runs / "teacher" / "finished").write_text("")      # the teacher labels are made
    (runs / "v0.2.0").mkdir()
    (runs / "v0.2.0" / "fptn.safetensors").write_text("")
    (runs / "cpu-small-base").mkdir()
    (runs / "cpu-small-base" / "last.safetensors").write_text("")
    (runs / "chain.log").write_text("2026-12-02T14:38:57Z small-dhln 3662 s finished\n"
                                    "2026-12-02T15:24:43Z small-base 2746 s finished\n"
                                    "2026-12-02T15:40:00Z ablation 900 s interrupted\n")
    (tmp_path / "tracker" / "assets").mkdir(parents=True)   # the script's ASSETS, relative to its folder
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "CALLS": str(tmp_path / "calls"),
           "RUNS": str(runs), "DATA": str(tmp_path / "data")}
    proc = subprocess.run([shutil.which("bash"), str(REPO / "train" / "make_default_weights.sh")], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=60)
    # The recorder writes no weights, so the script stops at its first copy of them (after the polish step).
    assert proc.returncode != 0 and "cpu-rt-polish/last.safetensors" in proc.stderr, proc.stderr
    assert (tmp_path / "tracker" / "assets" / "shtrack-cpu-small.safetensors").exists()
    calls = (tmp_path / "calls").read_text().splitlines()
    assert [c.split(" --")[0] for c in calls] == ["python -m benchmarks.ablation", "python -m train dhln"]
    assert "--init-partial" not in calls[1] and "chosen.safetensors" in calls[1]
    assert "small-dhln: finished before" in proc.stdout and "small-base: finished before" in proc.stdout
    log = (runs / "chain.log").read_text().splitlines()
    assert [line.split()[1:] for line in log[3:]] == [[name, "0", "s", "finished"] for name in ("ablation", "polish")]


def test_loss_weights_flag_replaces_only_the_named_weights_and_rejects_unknown_names():
    from train.common import TrainConfig
    from train.losses import LossWeights

    assert TrainConfig().loss_weights_config() == LossWeights()       # empty: the paper's
    w = TrainConfig(loss_weights="pixel=1, gradient=0.5").loss_weights_config()
    assert (w.pixel, w.gradient, w.heatmap, w.transfer_l1) == (1.0, 0.5, 1.0, 0.01)
    with pytest.raises(ValueError, match="not one of"):
        TrainConfig(loss_weights="pixels=1")
    with pytest.raises(ValueError, match="NAME=NUMBER"):
        TrainConfig(loss_weights="pixel")


@pytest.mark.slow
def test_loss_weights_flag_reaches_the_training_loop(faces_300w, tmp_path):
    from benchmarks.common import read_scalars

    out = tmp_path / "run"
    proc = _train("dhln", "--preset", "test", "--data", str(faces_300w), "--batch-size", "4", "--workers", "0",
                  "--steps", "1", "--log-every", "1", "--eval-every", "1", "--out", str(out), "--val-fraction", "0.3",
                  "--loss-weights", "heatmap=0,pixel=2")
    assert proc.returncode == 0, proc.stderr
    logged = read_scalars(out, "train/")[0]
    assert logged["heatmap"] == 0 and logged["grad_share_heatmap"] == 0
    assert logged["pixel"] > 0 and logged["grad_share_pixel"] > 0.5


@pytest.mark.parametrize("args,says", [
    (["--config", "MISSING.toml"], "cannot read the config"),
    (["--config", "BAD.toml"], "steps must be int"),
    (["--preset", "cpu-huge"], "unknown preset"),
    (["--batch-size", "0"], "batch_size must be >= 1"),
    (["--lr", "nan"], "lr must be a finite number"),
    (["--threads", "100000"], "threads and workers are at most"),
])
def test_bad_training_settings_are_one_line_errors(tmp_path, capsys, args, says):
    from train.__main__ import main

    (tmp_path / "BAD.toml").write_text('steps = "two"\n')
    args = [a.replace("MISSING.toml", str(tmp_path / "nope.toml")).replace("BAD.toml", str(tmp_path / "BAD.toml"))
            for a in args]
    code = main(["dhln", *args, "--out", str(tmp_path / "never")])
    err = capsys.readouterr().err
    assert code == 2 and says in err and "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "never").exists()


def test_a_corrupt_image_mid_run_is_one_line_and_keeps_the_steps_done(faces_300w, tmp_path, capsys):
    import shutil

    from train.__main__ import main

    data = tmp_path / "data"
    shutil.copytree(faces_300w, data)
    victim = sorted(data.rglob("*.jpg"))[-1]
    victim.write_bytes(b"not a jpeg")
    out = tmp_path / "run"
    code = main(["dhln", "--preset", "test", "--data", str(data), "--steps", "40", "--batch-size", "2",
                 "--workers", "0", "--log-every", "100", "--eval-every", "1000", "--ckpt-every", "1000",
                 "--val-fraction", "0.01", "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and "cannot decode image" in err and victim.name in err and "Traceback" not in err, err
    state = out / "state.pt"
    if state.exists():     # the steps before the failing one are kept (unless it failed on the first)
        assert read_extra(out / "last.safetensors")["step"] >= 1


def test_distillation_targets_are_the_teachers_points_at_the_students_resolution():
    from types import SimpleNamespace

    from sht_model.config import get_config
    from sht_model.heatmap import decode, encode, from_heatmap_coords, to_heatmap_coords

    teacher_cfg, student_cfg = get_config("cpu-rt"), get_config("cpu-small")
    points_in_teacher = torch.from_numpy(np.random.default_rng(0).uniform(12, 52, (2, 68, 2)).astype(np.float32))

    class Teacher(torch.nn.Module):      # answers every input with heatmaps of known points
        cfg = teacher_cfg

        def forward(self, x):
            assert x.shape[-1] == teacher_cfg.input_size
            hm = to_heatmap_coords(points_in_teacher, teacher_cfg.input_size, teacher_cfg.feature_size)
            return SimpleNamespace(heatmaps=[encode(hm, teacher_cfg.feature_size, teacher_cfg.heatmap_sigma)])

    inputs = torch.zeros(2, 3, student_cfg.input_size, student_cfg.input_size)
    targets = losses.distillation_targets(Teacher(), inputs, student_cfg)
    assert targets.shape == (2, 68, student_cfg.feature_size, student_cfg.feature_size)
    xy, _ = decode(targets.numpy(), student_cfg.heatmap_sigma)
    got = from_heatmap_coords(xy, student_cfg.input_size, student_cfg.feature_size)
    expected = (points_in_teacher.numpy() + 0.5) * student_cfg.input_size / teacher_cfg.input_size - 0.5
    assert np.abs(got - expected).max() < 0.15        # a tenth of a student input pixel


@pytest.mark.slow
def test_distill_flag_adds_its_term_to_the_training_loop(faces_300w, tmp_path, tiny_weights):
    from benchmarks.common import read_scalars

    out = tmp_path / "run"
    proc = _train("dhln", "--preset", "test", "--data", str(faces_300w), "--batch-size", "4", "--workers", "0",
                  "--steps", "1", "--log-every", "1", "--eval-every", "1", "--out", str(out), "--val-fraction", "0.3",
                  "--distill", str(tiny_weights), "--distill-weight", "0.5")
    assert proc.returncode == 0, proc.stderr
    assert read_scalars(out, "train/")[0]["distill"] > 0
