"""SHT model family: DHLN (landmarks + face hallucination), FPTN (pose transfer), heatmaps, weight IO, export."""

from .config import PRESETS, DHLNConfig, get_config
from .dhln import DHLN, DHLNOutput, build_model, count_flops, count_parameters
from .fptn import FPTN, FPTNConfig
from .weights import WeightsError, load_model, save_model

__all__ = ["PRESETS", "DHLNConfig", "get_config", "DHLN", "DHLNOutput", "build_model", "count_flops",
           "count_parameters", "FPTN", "FPTNConfig", "WeightsError", "load_model", "save_model"]
