"""Benchmark scripts on fixtures: the paper protocol on real 300W / WFLW samples, and the report writer."""

from __future__ import annotations

import json
import shutil

import numpy as np

from tests.conftest import shared
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
    assert "| cpu-rt | 1.00M | 0.80 | 9.0 / 10.0 | 5.00 / 6.00 | 200 |" in text
    assert "not run yet" in text   # speed and lowres files absent: said so, no numbers invented
