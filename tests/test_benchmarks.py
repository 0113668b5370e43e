"""Benchmark scripts on fixtures: the paper protocol on real 300W / WFLW samples, and the report writer."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from tests.conftest import shared, write_tb_events
from train.readers import write_pts


def _coco_to_pts(json_path, out_dir, folder: str) -> None:
    data = json.loads(json_path.read_text())
    names = {im["id"]: im["file_name"] for im in data["images"]}
    (out_dir / folder).mkdir(parents=True, exist_ok=True)
    for ann in data["annotations"]:
        name = names[ann["image_id"]]
        xy = np.asarray(ann["keypoints"], np.float32).reshape(-1, 3)[:, :2]
        shutil.copy(json_path.parent / name, out_dir / folder / name)
        write_pts(out_dir / folder / (name.rsplit(".", 1)[0] + ".pts"), xy)


def test_paper_protocol_on_real_300w_and_wflw_fixtures(tmp_path, tiny_weights, monkeypatch):
    from benchmarks import paper

    fixtures = shared("fixtures", "mmpose_testdata")
    _coco_to_pts(fixtures / "300w" / "test_300w.json", tmp_path / "300w", "ibug")
    wflw = json.loads((fixtures / "wflw" / "test_wflw.json").read_text())
    names = {im["id"]: im["file_name"] for im in wflw["images"]}
    lines = []
    for ann in wflw["annotations"]:
        xy = np.asarray(ann["keypoints"], np.float32).reshape(-1, 3)[:, :2]
        lines.append(" ".join(f"{v:.3f}" for v in xy.reshape(-1)) + " 0 0 1 1 0 0 0 0 0 0 " + names[ann["image_id"]])
    (tmp_path / "wflw.txt").write_text("\n".join(lines) + "\n")
    monkeypatch.setattr(paper, "save", lambda name, payload: (tmp_path / f"{name}.json").write_text(json.dumps(payload)))
    assert paper.main(["--300w", str(tmp_path / "300w"), "--wflw", str(tmp_path / "wflw.txt"),
                       str(fixtures / "wflw"), "--weights", str(tiny_weights)]) == 0
    result = json.loads((tmp_path / "paper.json").read_text())["results"]
    assert result["300W challenging"]["n"] == 2 and result["300W full"]["n"] == 2 and result["WFLW"]["n"] == len(wflw["annotations"])
    for r in result.values():
        assert np.isfinite(r["nme_io"]) and 0 <= r["ssim_y"] <= 1 and r["psnr_y"] > 0


def test_report_renders_from_result_files(tmp_path, monkeypatch):
    from benchmarks import report

    monkeypatch.setattr(report, "RESULTS", tmp_path)
    (tmp_path / "model_latency.json").write_text(json.dumps({"machine": {"cores": 2}, "presets": {"cpu-rt": {
        "params": 1e6, "gflops": 0.8, "torch_ms_p50": 9.0, "torch_ms_p95": 10.0, "ort_ms_p50": 5.0, "ort_ms_p95": 6.0,
        "ort_fps": 200.0, "threads": 2}}}))
    text = report.render()
    assert "| cpu-rt | - | 1.00M | 0.80 | 9.0 / 10.0 | 5.00 / 6.00 | 200 |" in text
    assert "not run yet" in text   # speed and lowres files absent: said so, no numbers invented


def test_vertex_map_recovers_the_vertices_that_sit_on_the_68_points():
    from benchmarks.peers import fit_vertex_map, to68

    rng = np.random.default_rng(0)
    truth = rng.choice(468, 68, replace=False)
    mesh = rng.uniform(0, 200, (30, 468, 2)).astype(np.float32)
    dlib68 = mesh[:, truth] + rng.normal(0, 0.3, (30, 68, 2))     # dlib's points near those vertices
    dlib68[:, 36], dlib68[:, 45] = [50, 100], [150, 100]             # a sane inter-ocular distance
    mesh[:, truth[36]], mesh[:, truth[45]] = dlib68[:, 36], dlib68[:, 45]
    index = fit_vertex_map(mesh, dlib68)
    assert (index == truth).all()
    assert to68(mesh, index).shape == (30, 68, 2)


def test_committed_mediapipe_mapping_is_valid():
    from benchmarks.peers import load_mapping

    index, fit = load_mapping()
    assert len(set(index.tolist())) > 60            # distinct vertices, not one point repeated
    assert not set(fit["fit_clips"]) & set(fit["held_out_clips"])   # fitted on training clips only


def test_mediapipe_peer_missing_environment_is_reported(monkeypatch, tmp_path):
    import pytest

    from benchmarks import peers

    monkeypatch.setenv("SHTRACK_MEDIAPIPE_PYTHON", str(tmp_path / "nope" / "python"))
    with pytest.raises(peers.PeerUnavailable, match="setup_mediapipe.sh"):
        peers.mediapipe_python()


def test_mediapipe_peer_tracks_the_demo_clip():
    """Runs the real FaceMesh in its own environment (CI builds it with benchmarks/setup_mediapipe.sh)."""
    import pytest

    from benchmarks import peers

    clip = shared("videos") / "driving_d13.mp4"
    try:
        peers.mediapipe_python()
    except peers.PeerUnavailable as e:
        pytest.skip(str(e))
    out = peers.mediapipe_video(clip, frames=12)
    assert out["xy"].shape == (12, 1, 468, 2)
    found = ~np.isnan(out["xy"][:, 0, 0, 0])
    assert found.mean() > 0.9
    assert (out["process_ms"] > 0).all() and out["wall_s"] > 0
    seq = peers.mediapipe_sequences({"blank": [np.zeros((240, 320, 3), np.uint8)] * 3})
    assert np.isnan(seq["blank"]).all()              # no face: NaN rows, not a crash


@pytest.mark.slow
def test_crowd_costs_count_the_scan_plan_and_rechecks_of_every_scene(monkeypatch):
    """The ceiling is 2 cores over the measured CPU time of the landmark call plus the detector pixels the
    default options make a frame scan (its plan share and one re-check crop per face per re-check period)."""
    from benchmarks import crowd
    from tracker.detector import load_detector
    from tracker.options import TrackerOptions
    from tracker.scan import RECHECK_SIZE, plan_scan

    monkeypatch.setattr(crowd, "SCENES", crowd.SCENES[2:3])       # the 16-face 1080p scene only
    result = crowd.costs(["cpu-fast-int8"], repeats=1)
    (entry,) = result["scenes"]
    spec, options = crowd.SCENES[0], TrackerOptions()
    plan = plan_scan(spec.width, spec.height, options.min_face, load_detector("yunet"))
    expected_px = sum(j.pixels for j in plan) / options.detect_every + 16 * RECHECK_SIZE ** 2 / options.recheck_every
    assert entry["detector_px_per_frame"] == pytest.approx(expected_px)
    assert entry["detect_ms"] == pytest.approx(expected_px * result["yunet_ms_per_640_tile"] / 640 ** 2)
    r = entry["models"]["cpu-fast-int8"]
    assert r["landmarks_ms"] == pytest.approx(16 * r["ms_per_face"]) and r["ms_per_face"] > 0
    assert r["ceiling_fps"] == pytest.approx(2000.0 / (r["landmarks_ms"] + entry["detect_ms"]))


def test_detector_candidates_find_faces_at_the_scan_scale_and_not_when_too_small(faces_300w):
    """benchmarks.detectors shrinks each face to W px and scales it back up as the scan would: at 24 px (48 px
    in the detector's image) YuNet finds them; shrunk to 4 px there is nothing left to find."""
    from benchmarks.detectors import recall
    from tracker.detector import YuNetDetector
    from train.readers import read_300w

    records = read_300w(faces_300w.parent)[:4]
    detector = YuNetDetector()
    assert recall(detector, records, 24, 2.0) == (1.0, 1.0)
    assert recall(detector, records, 4, 2.0) == (0.0, 0.0)


def test_chain_report_sums_each_steps_invocations_and_takes_a_resumed_runs_later_evaluation(tmp_path, monkeypatch):
    import torch

    import benchmarks.common
    from benchmarks import chain_report

    runs = tmp_path / "chain"
    (runs / "chain.log").parent.mkdir()
    (runs / "chain.log").write_text("2026-11-27T00:22:03Z dhln 9483 s interrupted\n"
                                    "2026-11-27T01:50:00Z dhln 4000 s finished\n"
                                    "2026-11-27T02:40:00Z base 3000 s interrupted\n")
    run = runs / "ablation" / "sht"
    run.mkdir(parents=True)
    torch.save({"step": 500, "seconds": 1234.5, "modules": {}, "optimizers": {}}, run / "state.pt")
    # An interrupted invocation logged step 500, its resumption logged step 500 again (the value that counts).
    for when, value in ((1_000_000, 0.09), (2_000_000, 0.05)):
        write_tb_events(run, when, {"val_nme/16px": {500: value, 250: value + 0.01}, "val_nme/64px": {500: value / 2}})

    # A finished step's folder that kept only its weights: step and clock from their metadata.
    from safetensors.numpy import save_file

    base = runs / "cpu-rt-base"
    (base / "tb").mkdir(parents=True)
    save_file({"w": np.zeros(1, np.float32)}, str(base / "last.safetensors"),
              metadata={"format": "shtrack-dhln/1",
                        "extra": json.dumps({"step": 2000, "stage": "dhln", "seconds": 2741.0})})

    result = chain_report.report(runs)
    base = result["training_runs"]["cpu-rt-base"]
    assert (base["step"], base["seconds"], base["evaluations"]) == (2000, 2741.0, {})
    assert result["chain_log"] == {"dhln": {"seconds": 13483, "invocations": 2, "finished": True},
                                   "base": {"seconds": 3000, "invocations": 1, "finished": False}}
    sht = result["training_runs"]["ablation/sht"]
    assert (sht["step"], sht["seconds"]) == (500, 1234.5)
    assert sht["evaluations"][500] == pytest.approx({"16px": 0.05, "64px": 0.025})
    assert sht["evaluations"][250] == pytest.approx({"16px": 0.06})
    assert list(sht["evaluations"]) == [250, 500]

    monkeypatch.setattr(benchmarks.common, "RESULTS", tmp_path / "results")
    assert chain_report.main(["--runs", str(runs)]) == 0
    assert json.loads((tmp_path / "results" / "chain_chain.json").read_text())["chain_log"]["dhln"]["seconds"] == 13483
    (runs / "chain.log").write_text("dhln took long\n")
    with pytest.raises(SystemExit, match="not a chain.log line"):
        chain_report.report(runs)


def test_model_latency_times_the_bundled_files_architecture_beside_the_preset(tmp_path, monkeypatch):
    from benchmarks import model_latency
    from sht_model import build_model, count_parameters
    from sht_model.weights import save_model

    shipped = build_model("test", fusion="v0.1", num_stacks=1)
    from tracker.backends import BundledWeights

    monkeypatch.setattr(model_latency, "WEIGHTS", {"test": BundledWeights(
        save_model(shipped, tmp_path / "shipped.safetensors"), "test", "float32", "", "")})
    monkeypatch.setattr(model_latency, "save", lambda name, payload: (tmp_path / f"{name}.json").write_text(json.dumps(payload)))
    assert model_latency.main(["--presets", "test", "--iters", "5", "--threads", "1", "--bundled"]) == 0
    result = json.loads((tmp_path / "model_latency.json").read_text())["presets"]
    assert list(result) == ["test", "test (bundled)"]
    assert result["test"]["fusion"] == "paper" and result["test"]["params"] == count_parameters(build_model("test"))
    assert result["test (bundled)"]["fusion"] == "v0.1"
    assert result["test (bundled)"]["params"] == count_parameters(shipped) != result["test"]["params"]
    assert all(r["ort_heatmaps_ms_p50"] > 0 for r in result.values())


def test_hallucination_gain_is_zero_for_a_silent_tail_and_negative_for_a_random_one(tmp_path, faces_300w, monkeypatch):
    import torch

    from benchmarks import hallucination
    from sht_model import build_model
    from sht_model.weights import save_model

    torch.manual_seed(0)
    noisy = build_model("test")
    silent = build_model("test")
    with torch.no_grad():   # a tail that adds nothing: the face is the bicubic-upsampled input
        silent.tail[-1].weight.zero_()
        silent.tail[-1].bias.zero_()
    paths = [save_model(m, tmp_path / f"{n}.safetensors") for n, m in (("noisy", noisy), ("silent", silent))]
    monkeypatch.setattr(hallucination, "save", lambda name, payload: (tmp_path / f"{name}.json").write_text(json.dumps(payload)))
    assert hallucination.main([*map(str, paths), "--data", str(faces_300w), "--val-fraction", "0.5",
                               "--widths", "12", "24", "--threads", "1"]) == 0
    result = json.loads((tmp_path / "hallucination.json").read_text())
    assert result["faces"] > 0
    noisy_scores, silent_scores = (result["weights"][str(p)] for p in paths)
    for width in ("12px", "24px"):
        # The test preset's face is half its input's side: torch's and OpenCV's bicubic downscaling differ by
        # ~0.1 dB (cpu-rt's face and input are both 64 px, where both are the identity).
        assert silent_scores[width]["psnr_gain_db"] == pytest.approx(0, abs=0.2)
        assert noisy_scores[width]["psnr_gain_db"] < -1
        assert noisy_scores[width]["bicubic"] == silent_scores[width]["bicubic"]
        assert 0 < silent_scores[width]["model"]["ssim"] <= 1
