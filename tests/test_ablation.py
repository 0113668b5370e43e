"""benchmarks.ablation: the arms train from one command and are scored side by side."""

from __future__ import annotations

import json

import cv2
import pytest

from tests.conftest import write_tb_events, write_video
from tests.test_train import _train


@pytest.mark.slow
def test_ablation_trains_every_arm_the_same_number_of_steps_and_scores_them(faces_300w, tiny_weights, tmp_path,
                                                                          monkeypatch):
    import benchmarks.common
    from benchmarks import ablation
    from tests.conftest import astronaut_scene

    videos, photos = tmp_path / "videos", tmp_path / "photos"
    write_video(videos / "talk.mp4", astronaut_scene(9, lambda i: [(200 + i, 200)], 150, size=(400, 400)))
    photos.mkdir()
    cv2.imwrite(str(photos / "one.jpg"), astronaut_scene(1, lambda i: [(200, 200)], 150, size=(400, 400))[0])
    fptn = tmp_path / "fptn"
    proc = _train("fptn", "--preset", "test", "--data", str(faces_300w), "--batch-size", "2", "--workers", "0",
                  "--fptn-channels", "8", "--fptn-blocks", "1", "--steps", "1", "--out", str(fptn))
    assert proc.returncode == 0, proc.stderr
    monkeypatch.setattr(benchmarks.common, "RESULTS", tmp_path / "results")
    runs = tmp_path / "arms"
    argv = ["--init", str(tiny_weights), "--fptn-init", str(fptn / "fptn.safetensors"), "--runs", str(runs),
            "--steps", "2", "--batch-size", "2", "--ckpt-every", "2", "--log-every", "1", "--threads", "1",
            "--fptn-channels", "8", "--fptn-blocks", "1", "--data", str(faces_300w), "--val-fraction", "0.3",
            "--videos", str(videos), "--images", str(photos), "--teacher", str(faces_300w), "--no-clips", "--no-card",
            "--ship", str(tmp_path / "shipped.safetensors"),
            "--train-args", "--workers", "0"]
    assert ablation.main(argv) == 0
    result = json.loads((tmp_path / "results" / "ablation.json").read_text())
    assert list(result["arms"]) == list(ablation.ARMS)
    for arm, r in result["arms"].items():
        config = json.loads((runs / arm / "config.json").read_text())
        assert config["steps"] == 2 and config["init"] == str(tiny_weights)
        assert set(r["faces"]) == {"16px", "24px", "32px", "64px"}
        assert 0 < r["hallucination"]["16px"]["bicubic"]["ssim"] <= 1
        assert "heatmap" in r["gradient_shares"]
    assert json.loads((runs / "control" / "config.json").read_text())["batch_size"] == 4   # faces per step as SHT's
    assert json.loads((runs / "sht" / "config.json").read_text())["unlabelled_fraction"] == 0
    control, again = (json.loads((runs / arm / "config.json").read_text()) for arm in ("control", "control-2"))
    assert again["seed"] == control["seed"] + 1          # the yardstick: the same recipe with another seed
    assert {k: v for k, v in again.items() if k not in ("seed", "out")} == \
        {k: v for k, v in control.items() if k not in ("seed", "out")}
    assert json.loads((runs / "sht-i" / "config.json").read_text())["unlabelled_pairs"] == "image"
    assert json.loads((runs / "teacher" / "config.json").read_text())["teacher"] == str(faces_300w)
    both = json.loads((runs / "teacher-sht" / "config.json").read_text())
    assert both["teacher"] == str(faces_300w) and both["unlabelled_pairs"] == "both"
    assert "transfer_l1" in result["arms"]["sht-v"]["gradient_shares"]
    assert "gain_over_control" not in result["arms"]["control"]
    for arm in ("sht", "sht-v", "sht-i", "teacher", "teacher-sht", "control-2"):
        gain = result["arms"][arm]["gain_over_control"]["16px"]
        control, scored = result["arms"]["control"]["faces"]["16px"]["nme"], result["arms"][arm]["faces"]["16px"]["nme"]
        assert gain["relative"] == pytest.approx(1 - scored / control)
        assert gain["ci95"][0] <= gain["relative"] <= gain["ci95"][1]
    best = min(result["arms"], key=lambda a: result["arms"][a]["faces"]["16px"]["nme"])
    assert result["shipped"]["arm"] == best
    assert (tmp_path / "shipped.safetensors").read_bytes() == (runs / best / "last.safetensors").read_bytes()
    # A second call finds every arm finished: nothing is retrained (the run folders' checkpoints stay as they were).
    stamp = {arm: (runs / arm / "state.pt").stat().st_mtime_ns for arm in ablation.ARMS}
    assert ablation.main(argv) == 0
    assert stamp == {arm: (runs / arm / "state.pt").stat().st_mtime_ns for arm in ablation.ARMS}


def test_gain_over_control_is_the_relative_nme_cut_with_an_interval_that_holds_zero_only_for_noise():
    import numpy as np

    from benchmarks.ablation import gain_over_control

    rng = np.random.default_rng(1)
    control = rng.gamma(4.0, 0.0125, 196)              # NMEs around 5%, spread like held-out faces
    better = control * 0.95                             # every face 5% better: a gain the faces show
    gain = gain_over_control(control, better)
    assert gain["relative"] == pytest.approx(0.05)
    assert 0.049 < gain["ci95"][0] <= gain["ci95"][1] < 0.051
    noisy = control * (1 + rng.normal(0, 0.2, 196))     # no gain, only per-face noise
    gain = gain_over_control(control, noisy)
    assert gain["ci95"][0] < 0 < gain["ci95"][1]
    assert gain["ci95"][1] - gain["ci95"][0] > 0.01     # the pairing does not hide that noise


class _SameViewTwice:
    """Pairs whose two views are one sample: FPTN's 'no move' baseline then matches face b exactly."""

    def __init__(self, pairs):
        self.pairs = pairs

    def __getitem__(self, i):
        pair = self.pairs[i]
        return {**pair, "b": pair["a"]}


def test_transfer_probe_measures_both_gradient_paths_and_the_no_move_baseline(faces_300w):
    import torch

    from benchmarks.transfer_probe import cosine, probe
    from tests.test_train import _fptn_and_dhln
    from train.data import Augment, LabelledPairs
    from train.readers import read_300w

    dhln, fptn = _fptn_and_dhln()
    pairs = LabelledPairs(read_300w(faces_300w), dhln.cfg, Augment(flip=False), seed=7, face_width=16.0)
    result = probe(dhln, fptn, pairs, count=4, batch_size=2)
    # The transfer L1 reaches DHLN both through the hallucinated face and through the heatmaps.
    assert result["grad_norm"]["transfer_l1_via_face"] > 0 and result["grad_norm"]["transfer_l1_via_heatmaps"] > 0
    assert result["grad_norm"]["heatmap"] > 0
    assert -1 <= result["cosine_with_heatmap"]["transfer_l1_via_heatmaps"] <= 1
    assert result["psnr_no_move"] < 40    # two different poses of one face
    assert 0.2 < result["tail_relu_active"] < 0.8    # a fresh tail: about half its units active
    with torch.no_grad():
        for conv in [m for m in dhln.tail if isinstance(m, torch.nn.Conv2d)][1:-1]:
            conv.bias.fill_(-1e3)    # every unit before the tail's ReLUs negative: a dead tail
    dead = probe(dhln, fptn, pairs, count=2, batch_size=2)
    assert dead["tail_relu_active"] == 0
    same = probe(dhln, fptn, _SameViewTwice(pairs), count=4, batch_size=2)
    assert same["psnr_no_move"] == pytest.approx(100.0)
    g = torch.tensor([1.0, -2.0, 3.0])
    assert cosine(g, g) == pytest.approx(1.0) and cosine(g, -g) == pytest.approx(-1.0)
    assert cosine(g, torch.tensor([2.0, 1.0, 0.0])) == pytest.approx(0.0)


def test_an_arm_is_finished_when_its_last_weights_are_its_last_steps_without_optimiser_state(tmp_path):
    import numpy as np
    from safetensors.numpy import save_file

    from benchmarks.ablation import finished

    run = tmp_path / "control"
    assert not finished(run, 600)
    run.mkdir()
    for step, done in ((500, False), (600, True)):
        save_file({"w": np.zeros(1, np.float32)}, str(run / "last.safetensors"),
                  metadata={"format": "shtrack-dhln/1", "extra": json.dumps({"step": step, "stage": "dhln"})})
        assert finished(run, 600) is done
    assert not (run / "state.pt").exists()


def test_gradient_shares_count_a_step_logged_by_an_interrupted_arm_and_its_resumption_once(tmp_path):
    from benchmarks.ablation import gradient_shares

    run = tmp_path / "sht"
    # The interrupted invocation logged steps 25 and 50; the resumption (from the step-25 checkpoint) 50 and 75.
    for when, logged in ((1_000_000, {25: 0.2, 50: 0.9}), (2_000_000, {50: 0.2, 75: 0.2})):
        write_tb_events(run, when, {"train/grad_share_transfer_l1": logged,
                                    "train/grad_share_heatmap": {step: 1 - v for step, v in logged.items()}})
    assert gradient_shares(run) == pytest.approx({"heatmap": 0.8, "transfer_l1": 0.2})
