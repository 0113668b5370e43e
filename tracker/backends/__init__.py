"""One inference seam: `load_backend(weights, kind, device, faces=...)` returns an object with `.cfg` and
`.infer(batch) -> (heatmaps, faces)`; nothing downstream looks at the runtime again. Hallucinated faces are
computed only when asked for at start-up (faces=True); otherwise the graph stops at the heatmaps and faces is None.

kinds: torch (CPU/CUDA), onnxruntime (CPU), tensorrt (CUDA, `[tensorrt]` extra), auto (TensorRT when
CUDA and torch-tensorrt are present, else ONNX Runtime).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Protocol

import numpy as np

from sht_model.config import DHLNConfig

log = logging.getLogger("shtrack")

ASSETS = Path(__file__).resolve().parent.parent / "assets"
# Weights shipped in the package, by model name (`shtrack --model NAME`); MODEL_CARD.md describes them.
# The int8 files are `shtrack export --int8` of the float ones (ONNX Runtime only, heatmaps only).
BUNDLED = {"cpu-rt": ASSETS / "shtrack-cpu-rt.safetensors",       # the default: most accurate on CPU
           "cpu-fast": ASSETS / "shtrack-cpu-fast.safetensors",   # one stack: 1.4-1.7x the frame rate, less accurate
           "cpu-rt-int8": ASSETS / "shtrack-cpu-rt-int8.onnx",
           "cpu-fast-int8": ASSETS / "shtrack-cpu-fast-int8.onnx"}
DEFAULT_WEIGHTS = BUNDLED["cpu-rt"]
KINDS = ("auto", "torch", "onnxruntime", "tensorrt")


class Backend(Protocol):
    cfg: DHLNConfig
    name: str
    faces: bool

    def infer(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """(n, 3, S, S) float32 normalised -> heatmaps (n, 68, h, h), faces (n, 3, F, F) normalised or None."""


def _cuda_available() -> bool:
    try:
        import torch

        return torch.cuda.is_available()
    except ImportError:
        return False


def _tensorrt_available() -> bool:
    import importlib.util

    # torch-tensorrt first: without it there is no reason to pay torch's import (~1.5 s) to ask about CUDA.
    return importlib.util.find_spec("torch_tensorrt") is not None and _cuda_available()


def resolve_kind(kind: str) -> str:
    if kind not in KINDS:
        raise ValueError(f"unknown backend {kind!r}; choose from {', '.join(KINDS)}")
    if kind != "auto":
        return kind
    return "tensorrt" if _tensorrt_available() else "onnxruntime"


def load_backend(weights: str | Path | None = None, kind: str = "auto", device: str = "cpu",
                 threads: int = 0, faces: bool = False) -> Backend:
    weights = Path(weights) if weights else DEFAULT_WEIGHTS
    # An exported .onnx file only runs on ONNX Runtime: `auto` means that runtime for it.
    kind = "onnxruntime" if kind == "auto" and weights.suffix == ".onnx" else resolve_kind(kind)
    if kind == "torch":
        try:
            from .torch_backend import TorchBackend
        except ImportError:
            from sht_model.errors import BackendError

            raise BackendError("--backend torch needs torch: pip install 'shtrack[torch]'") from None

        backend = TorchBackend(weights, device, threads, faces)
    elif kind == "onnxruntime":
        from .onnx_backend import OnnxBackend

        backend = OnnxBackend(weights, threads, faces)
    else:
        from .tensorrt_backend import TensorRTBackend

        backend = TensorRTBackend(weights, faces)
    log.info("backend %s, model %s (%s)", backend.name, backend.cfg.name, weights.name)
    return backend
