"""TensorRT (FP16) through torch-tensorrt: compiled once per weights file and cached beside the ONNX exports."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from sht_model.config import DHLNConfig

from .onnx_backend import cache_dir


class TensorRTBackend:
    def __init__(self, weights: Path, faces: bool = False):
        from sht_model.errors import BackendError

        try:
            import torch
        except ImportError:
            raise BackendError("the tensorrt backend needs torch and torch-tensorrt: pip install 'shtrack[tensorrt]'") from None
        if not torch.cuda.is_available():
            raise BackendError("the tensorrt backend needs CUDA; none is visible (use --backend onnxruntime)")
        from sht_model.export import export_tensorrt, tensorrt_config_json
        from sht_model.weights import load_model

        digest = hashlib.sha256(weights.read_bytes()).hexdigest()[:16]
        engine = cache_dir() / f"{weights.stem}-{digest}{'' if faces else '-heatmaps'}.trt.ts"
        if not engine.exists():
            engine.parent.mkdir(parents=True, exist_ok=True)
            export_tensorrt(load_model(weights), engine, with_face=faces)
        import torch_tensorrt  # noqa: F401 -- registers the TensorRT runtime ops before loading

        self.module = torch.jit.load(str(engine), map_location="cuda").eval()
        self.cfg = DHLNConfig.from_json(tensorrt_config_json(engine))
        self.name = "tensorrt-fp16"
        self.faces = faces

    def infer(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        import torch

        with torch.inference_mode():
            out = self.module(torch.from_numpy(batch).cuda())
        if not self.faces:
            return out.float().cpu().numpy(), None
        return out[0].float().cpu().numpy(), out[1].float().cpu().numpy()
