"""SHT model family: DHLN (landmarks + face hallucination), FPTN (pose transfer), heatmaps, weight IO, export.

Names are imported on first use (PEP 562), so that the tracker's ONNX Runtime path, which needs only
`config`, `geometry` and `heatmap.decode`, never imports torch.
"""

from importlib import import_module

_WHERE = {"PRESETS": "config", "DHLNConfig": "config", "get_config": "config",
          "DHLN": "dhln", "DHLNOutput": "dhln", "build_model": "dhln", "count_flops": "dhln",
          "count_parameters": "dhln", "FPTN": "fptn", "FPTNConfig": "fptn",
          "WeightsError": "errors", "load_model": "weights", "save_model": "weights"}

__all__ = sorted(_WHERE)


def __getattr__(name: str):
    if name not in _WHERE:
        raise AttributeError(f"module 'sht_model' has no attribute {name!r}")
    return getattr(import_module(f".{_WHERE[name]}", __name__), name)
