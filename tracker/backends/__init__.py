"""One inference seam: `load_backend(weights, kind, device, faces=...)` returns an object with `.cfg` and
`.infer(batch) -> (heatmaps, faces)`; nothing downstream looks at the runtime again. Hallucinated faces are
computed only when asked for at start-up (faces=True); otherwise the graph stops at the heatmaps and faces is None.

kinds: torch (CPU/CUDA), onnxruntime (CPU), tensorrt (CUDA, `[tensorrt]` extra), auto (TensorRT when
CUDA and torch-tensorrt are present, else ONNX Runtime).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from sht_model.config import DHLNConfig

log = logging.getLogger("shtrack")

ASSETS = Path(__file__).resolve().parent.parent / "assets"
WEIGHTS_LICENCE = "non-commercial research use only (300W / iBUG annotations; MODEL_CARD.md)"


@dataclass(frozen=True)
class BundledWeights:
    """A weight tag (`shtrack --model TAG`): which file, of which architecture preset (sht_model.config), at which
    precision, under which licence (timm's pretrained-config shape). Tags name trained weights; presets name
    architectures (one preset can have several tags). `sha256` is the shipped file's (tests/test_tracker.py
    checks it: a retrained file updates its row)."""
    file: Path
    preset: str
    precision: str          # float32 | int8 (int8: `shtrack export --int8` of the float file; ONNX Runtime only)
    note: str
    sha256: str
    licence: str = WEIGHTS_LICENCE


# The one table of the weights shipped in the package (MODEL_CARD.md describes them).
WEIGHTS = {
    "cpu-rt": BundledWeights(ASSETS / "shtrack-cpu-rt.safetensors", "cpu-rt", "float32",
                             "the default with --backend torch, on CUDA and with --save-faces; most accurate",
                             "d3928af46217f508122f8b1df1e6df5a2f9ab43333cd59f2b083ffb87453d611"),
    "cpu-fast": BundledWeights(ASSETS / "shtrack-cpu-fast.safetensors", "cpu-fast", "float32",
                               "one stack: about half the work per face, less accurate",
                               "38bed259ee7a0bb10cc678d2961d49c75797ca706ff69612fe05890d09f4c0ff"),
    "cpu-rt-int8": BundledWeights(ASSETS / "shtrack-cpu-rt-int8.onnx", "cpu-rt", "int8",
                                  "the default on CPU: cpu-rt at about half the time per face; heatmaps only",
                                  "aededd1bb2363bab81beadea2278b3469e2c65170c768b40e17cae09c133af3d"),
    "cpu-fast-int8": BundledWeights(ASSETS / "shtrack-cpu-fast-int8.onnx", "cpu-fast", "int8", "heatmaps only",
                                    "ad3bed3114534554a3477f66460bad493e4300d24dfd6f06aae55911f5fd44b5"),
}
DEFAULT_TAG = "cpu-rt"       # one model for every face when the ladder is not bundled
# On ONNX Runtime on the CPU, without hallucinated faces (an int8 file holds heatmaps only), a file's default is
# cpu-rt's int8 export: within 0.04 NME points of the float file at 12-64 px on the held-out faces, and about
# half its time per face (docs/results.md). A live source keeps the float file: int8's landmarks on a still face
# move ~20% more from frame to frame, which the live smoother's one frame of delay does not absorb
# (tests/test_tracker.py's still-face bound), and a live source gives one frame at a time, not a backlog.
DEFAULT_CPU_TAG = "cpu-rt-int8"
# The ladder (tracker.routing): each face to the first model whose bound (face width, landmark box, source px)
# it is under. Used by default once every file of it is bundled; `--model` / `--weights` force one model. The bound
# is provisional until the trained cpu-small's curve sets it (`python -m benchmarks.ladder`: the width from which
# cpu-rt is more accurate; docs/results.md).
LADDER = (("cpu-small", 26.0), ("cpu-rt", math.inf))
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


def default_weights(kind: str = "auto", device: str = "cpu", faces: bool = False, live: bool = False) -> Path:
    """The file a run without --weights / --model uses (when the ladder is not bundled)."""
    cpu_int8 = resolve_kind(kind) == "onnxruntime" and device == "cpu" and not faces and not live
    tag = DEFAULT_CPU_TAG if cpu_int8 and WEIGHTS[DEFAULT_CPU_TAG].file.exists() else DEFAULT_TAG
    return WEIGHTS[tag].file


def load_backend(weights: str | Path | None = None, kind: str = "auto", device: str = "cpu",
                 threads: int = 0, faces: bool = False, live: bool = False) -> Backend:
    """live: the default weights are for a live source (default_weights)."""
    weights = Path(weights) if weights else default_weights(kind, device, faces, live)
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

        backend = OnnxBackend(weights, threads, faces, device)   # cuda: onnxruntime-gpu's CUDA / TensorRT providers
    else:
        from .tensorrt_backend import TensorRTBackend

        backend = TensorRTBackend(weights, faces)
    backend.weights = weights          # which file runs (the summary and --resume's check name it)
    backend.tag = next((t for t, w in WEIGHTS.items() if w.file == weights), weights.stem)   # the CSV's model
    log.info("backend %s, model %s (%s)", backend.name, backend.cfg.name, weights.name)
    return backend


def ladder_bundled() -> bool:
    """Every model of LADDER ships with this install (the default is then the ladder)."""
    return all(tag in WEIGHTS and WEIGHTS[tag].file.exists() for tag, _ in LADDER)


def load_ladder(kind: str = "auto", device: str = "cpu", threads: int = 0, faces: bool = False, ladder=LADDER):
    """The bundled models of `ladder` as a tracker.routing.Ladder."""
    from ..routing import Ladder, Rung

    return Ladder([Rung(tag, load_backend(WEIGHTS[tag].file, kind, device, threads, faces), below)
                   for tag, below in ladder])
