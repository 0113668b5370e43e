from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np

from sht_model.config import DHLNConfig


def cache_dir() -> Path:
    root = os.environ.get("SHTRACK_CACHE") or os.path.join(os.environ.get("XDG_CACHE_HOME", "~/.cache"), "shtrack")
    return Path(root).expanduser()


def onnx_for(weights: Path, faces: bool = True) -> Path:
    """An ONNX file for `weights`: itself, a sibling `.onnx` exported from it, or a cached export
    (heatmaps only unless `faces`)."""
    if weights.suffix == ".onnx":
        return weights
    sibling = weights.with_suffix(".onnx")
    if sibling.exists() and sibling.stat().st_mtime >= weights.stat().st_mtime:
        return sibling
    digest = hashlib.sha256(weights.read_bytes()).hexdigest()[:16]
    cached = cache_dir() / f"{weights.stem}-{digest}{'' if faces else '-heatmaps'}.onnx"
    if not cached.exists():
        from sht_model.export import export_onnx
        from sht_model.weights import load_model

        export_onnx(load_model(weights), cached, with_face=faces)
    return cached


class OnnxBackend:
    def __init__(self, weights: Path, threads: int = 0, faces: bool = False):
        import onnxruntime as ort

        if not weights.is_file():
            from sht_model.errors import WeightsError

            raise WeightsError(f"{weights}: weights file not found")
        path = onnx_for(weights, faces)
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        # No busy-waiting between runs: spinning ORT threads steal the core the PyAV reader thread decodes on.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.cfg = DHLNConfig.from_json(self.session.get_modelmeta().custom_metadata_map["shtrack_config"])
        self.input_name = self.session.get_inputs()[0].name
        # A user's own .onnx may carry the face output even when it is not wanted; it is fetched only if asked.
        self.faces = faces
        self.outputs = ["heatmaps", "face"] if faces else ["heatmaps"]
        if faces and "face" not in {o.name for o in self.session.get_outputs()}:
            from sht_model.errors import WeightsError

            raise WeightsError(f"{path}: this ONNX model has no 'face' output (export it with faces)")
        self.name = "onnxruntime-cpu"

    def infer(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        out = self.session.run(self.outputs, {self.input_name: np.ascontiguousarray(batch, np.float32)})
        return out[0], (out[1] if self.faces else None)
