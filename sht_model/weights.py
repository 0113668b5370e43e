"""Weight IO: safetensors with the model config (and provenance) in the metadata.

A file alone rebuilds its model: `load_model(path)`. Nothing is ever unpickled: safetensors is read
as plain tensors, and legacy `.pt` state dicts only through `torch.load(weights_only=True)`.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from .config import config_from_metadata
from .dhln import DHLN
from .errors import WeightsError

FORMAT = "shtrack-dhln/1"


def save_model(model: DHLN, path: str | Path, extra: dict | None = None) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = {"format": FORMAT, "config": model.cfg.to_json()}
    if extra:
        meta["extra"] = json.dumps(extra, sort_keys=True)
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    tmp = path.with_suffix(path.suffix + ".partial")
    save_file(state, str(tmp), metadata=meta)
    tmp.replace(path)
    return path


def read_metadata(path: str | Path) -> dict:
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
    except (SafetensorError, OSError, ValueError) as exc:
        raise WeightsError(f"{path}: not a readable safetensors file ({exc})") from None
    if meta.get("format") != FORMAT:
        raise WeightsError(f"{path}: not an shtrack DHLN weights file (metadata format={meta.get('format')!r})")
    return meta


def read_extra(path: str | Path) -> dict:
    """What the training command wrote beside the weights (stage, step, seconds, ...); {} for a file without it."""
    return json.loads(read_metadata(path).get("extra", "{}"))


def load_model(path: str | Path, map_location: str = "cpu") -> DHLN:
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"{path}: weights file not found")
    if path.suffix == ".onnx":
        raise WeightsError(f"{path}: an exported ONNX model runs on --backend onnxruntime only")
    if path.suffix in (".pt", ".pth", ".ckpt", ".bin"):
        return _load_torch_state(path, map_location)
    meta = read_metadata(path)
    cfg = config_from_metadata(path, meta.get("config"))
    model = DHLN(cfg)
    try:
        state = load_file(str(path), device=map_location)
        model.load_state_dict(state)
    except (SafetensorError, RuntimeError) as exc:
        raise WeightsError(f"{path}: weights do not match config {cfg.name!r} ({str(exc).splitlines()[0]})") from None
    return model.eval()


def _load_torch_state(path: Path, map_location: str) -> DHLN:
    """Legacy path: {'config': json, 'model': state_dict} saved by torch.save, read with weights_only=True."""
    try:
        blob = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # noqa: BLE001 -- torch raises UnpicklingError/RuntimeError for refused payloads
        raise WeightsError(f"{path}: refused to load (only plain tensors are allowed: {str(exc).splitlines()[0]})") from None
    if not isinstance(blob, dict) or "config" not in blob or "model" not in blob:
        raise WeightsError(f"{path}: expected a dict with 'config' and 'model'")
    model = DHLN(config_from_metadata(path, blob["config"]))
    model.load_state_dict(blob["model"])
    return model.eval()
