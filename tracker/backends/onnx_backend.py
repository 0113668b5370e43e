from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np



def cache_dir() -> Path:
    root = os.environ.get("SHTRACK_CACHE") or os.path.join(os.environ.get("XDG_CACHE_HOME", "~/.cache"), "shtrack")
    return Path(root).expanduser()


def sha256_of(path: Path) -> str:
    """In 1 MiB chunks: a weights file of any size hashes in constant memory."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def providers_for(device: str) -> list:
    """ONNX Runtime execution providers for --device: cpu, or cuda[:N] (TensorRT, then CUDA, then the CPU for
    any node they cannot run), which needs the onnxruntime-gpu package in place of onnxruntime."""
    import onnxruntime as ort

    from sht_model.errors import BackendError

    if device == "cpu":
        return ["CPUExecutionProvider"]
    if not device.startswith("cuda") or not (device == "cuda" or device[5:].lstrip(":").isdigit()):
        raise BackendError(f"--device {device}: give cpu or cuda[:N]")
    available = ort.get_available_providers()
    if "CUDAExecutionProvider" not in available:
        raise BackendError(f"--device {device} on ONNX Runtime needs its GPU build: pip uninstall onnxruntime && "
                           "pip install onnxruntime-gpu (and CUDA 12 with cuDNN 9)")
    index = int(device.split(":")[1]) if ":" in device else 0
    chosen = [("TensorrtExecutionProvider", {"device_id": index})] if "TensorrtExecutionProvider" in available else []
    return chosen + [("CUDAExecutionProvider", {"device_id": index}), "CPUExecutionProvider"]


def open_session(path: Path, options=None, providers: list | None = None):
    """An ONNX Runtime session (the CPU unless `providers` says otherwise); an unloadable file is a WeightsError
    naming it."""
    import onnxruntime as ort

    from sht_model.errors import WeightsError

    try:
        return ort.InferenceSession(str(path), options, providers=providers or ["CPUExecutionProvider"])
    except Exception as exc:  # noqa: BLE001 -- ORT raises its own InvalidProtobuf / Fail / ... classes
        raise WeightsError(f"{path}: not a model ONNX Runtime can load ({str(exc).strip().splitlines()[0][:200]})") from None


def onnx_for(weights: Path, faces: bool = True, options=None, providers: list | None = None):
    """-> (an ONNX file for `weights`, an open session on it with `options`): the file is `weights` itself; a
    sibling `.onnx` exported from exactly these weights (its metadata carries their sha256; the bundled models
    ship one, heatmaps only, so the tracker needs no torch); or a cached export, made with torch on first use
    (heatmaps only unless `faces`). The sibling is checked on the session that then runs it: loading a graph
    costs ~0.1 s of start-up."""
    if weights.suffix == ".onnx":
        return weights, open_session(weights, options, providers)
    digest = sha256_of(weights)
    from sht_model.errors import WeightsError

    sibling = weights.with_suffix(".onnx")
    if sibling.is_file():     # a sibling that is not a readable export of these weights is passed over
        try:
            session = open_session(sibling, options, providers)
        except WeightsError:
            session = None
        if session is not None and (session.get_modelmeta().custom_metadata_map.get("shtrack_source_sha256") == digest
                                    and (not faces or "face" in {o.name for o in session.get_outputs()})):
            return sibling, session
    cached = cache_dir() / f"{weights.stem}-{digest[:16]}{'' if faces else '-heatmaps'}.onnx"
    if cached.is_file():
        try:
            return cached, open_session(cached, options, providers)
        except WeightsError:      # a damaged cache entry (an export cut short): made again below
            cached.unlink()
    if not cached.exists():
        try:
            from sht_model.export import export_onnx
            from sht_model.weights import load_model
        except ImportError:
            from sht_model.errors import WeightsError

            raise WeightsError(f"{weights}: running a .safetensors file on ONNX Runtime exports it with torch first, "
                               "which is not installed: pip install 'shtrack[torch]', or pass an exported .onnx")
        export_onnx(load_model(weights), cached, with_face=faces, source_sha256=digest)
    return cached, open_session(cached, options, providers)


class OnnxBackend:
    def __init__(self, weights: Path, threads: int = 0, faces: bool = False, device: str = "cpu"):
        import onnxruntime as ort

        from sht_model.errors import WeightsError

        if not weights.exists():
            raise WeightsError(f"{weights}: weights file not found")
        if not weights.is_file():     # a FIFO or device would block or stream without end
            raise WeightsError(f"{weights}: not a regular file")
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        # No busy-waiting between runs: spinning ORT threads steal the core the PyAV reader thread decodes on.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        providers = providers_for(device)
        path, self.session = onnx_for(weights, faces, options, providers)
        config = self.session.get_modelmeta().custom_metadata_map.get("shtrack_config")
        if config is None:
            raise WeightsError(f"{path}: an ONNX model without shtrack's metadata, not a DHLN export "
                               "(make one with `shtrack export --weights W.safetensors --onnx W.onnx`)")
        from sht_model.config import config_from_metadata

        self.cfg = config_from_metadata(path, config)
        self.input_name = self.session.get_inputs()[0].name
        # A user's own .onnx may carry the face output even when it is not wanted; it is fetched only if asked.
        self.faces = faces
        self.outputs = ["heatmaps", "face"] if faces else ["heatmaps"]
        if faces and "face" not in {o.name for o in self.session.get_outputs()}:
            raise WeightsError(f"{path}: this ONNX model has no 'face' output (export it with faces)")
        self.name = "onnxruntime-" + ("cpu" if device == "cpu" else self.session.get_providers()[0].replace(
            "ExecutionProvider", "").lower())

    def infer(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        try:
            out = self.session.run(self.outputs, {self.input_name: np.ascontiguousarray(batch, np.float32)})
        except Exception as exc:  # noqa: BLE001 -- ORT's Fail / RuntimeException / InvalidArgument classes
            from sht_model.errors import BackendError

            raise BackendError(f"ONNX Runtime failed on a batch of {len(batch)} faces "
                               f"({str(exc).strip().splitlines()[0][:200]})") from None
        return out[0], (out[1] if self.faces else None)
