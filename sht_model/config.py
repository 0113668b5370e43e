"""DHLN configuration: one frozen dataclass and the named presets.

Checkpoints store the config (as JSON in the safetensors metadata) and rebuild the model from it,
so a weights file alone is enough to run.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass


# Sane ranges of the numeric config fields (inclusive).
LIMITS = {
    "input_size": (8, 512), "feature_size": (2, 256), "face_size": (8, 1024), "num_stacks": (1, 16),
    "channels": (4, 1024), "sr_channels": (1, 512), "sr_blocks": (0, 32), "hourglass_depth": (1, 8),
    "blocks_per_level": (1, 8), "fusion_kernel": (1, 7), "num_landmarks": (68, 68), "heatmap_sigma": (0.1, 16.0),
}


@dataclass(frozen=True)
class DHLNConfig:
    name: str = "custom"
    input_size: int = 64          # side of the square RGB crop fed to the network
    feature_size: int = 64        # side of the hourglass features (= heatmap side)
    face_size: int = 128          # side of the hallucinated face
    num_stacks: int = 4
    channels: int = 256           # landmark stream width
    sr_channels: int = 64         # hallucination stream width
    sr_blocks: int = 4            # SRBlocks per stack (paper: 4)
    hourglass_depth: int = 4
    blocks_per_level: int = 1     # residual blocks per hourglass node
    fusion: str = "paper"         # "paper": Eq. 1-2 as written; "v0.1": the 0.1 files, bundled up to 84e080a (dhln.py)
    fusion_kernel: int = 3        # FUBlock2's conv (paper: 3x3; the CPU presets use 1x1 for speed)
    tail_activation: str = "leaky_relu"   # after each pixel shuffle of the face tail; "relu" in older files (dhln.py)
    num_landmarks: int = 68
    heatmap_sigma: float = 1.5    # Gaussian sigma of training targets, in heatmap pixels
    mean: tuple[float, float, float] = (0.5, 0.5, 0.5)   # RGB in [0,1] -> (x - mean) / std
    std: tuple[float, float, float] = (0.5, 0.5, 0.5)

    def __post_init__(self):
        # Checked before any layer is built: a file's metadata decides these numbers, and channels=30000 would
        # allocate hundreds of GB. The bounds are far above any preset and far below what exhausts a machine.
        for name, (low, high) in LIMITS.items():
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
                raise ValueError(f"config {name}={value!r} is outside [{low}, {high}]")
        for name in ("mean", "std"):
            value = getattr(self, name)
            if len(value) != 3 or not all(isinstance(v, (int, float)) and -10 <= v <= 10 for v in value) \
                    or (name == "std" and min(value) <= 0):
                raise ValueError(f"config {name}={value!r} is not three numbers in [-10, 10] (std > 0)")
        if self.input_size % self.feature_size:
            raise ValueError("input_size must be a multiple of feature_size")
        if self.face_size % self.feature_size:
            raise ValueError("face_size must be a multiple of feature_size")
        if self.feature_size % (2 ** self.hourglass_depth):
            raise ValueError("feature_size must be divisible by 2**hourglass_depth")
        if self.fusion not in ("paper", "v0.1"):
            raise ValueError(f"fusion must be 'paper' or 'v0.1', not {self.fusion!r}")
        if self.tail_activation not in ("leaky_relu", "relu"):
            raise ValueError(f"tail_activation must be 'leaky_relu' or 'relu', not {self.tail_activation!r}")

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "DHLNConfig":
        """A config from a weights file's metadata; ValueError (one line) for anything that is not a sane one."""
        try:
            raw = json.loads(text)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"config is not JSON ({exc.__class__.__name__})") from None
        if not isinstance(raw, dict):
            raise ValueError("config is not a JSON object")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(raw) - known
        if unknown:
            raise ValueError(f"unknown config keys: {sorted(unknown)}")
        # Files written before the `fusion` field existed are shtrack 0.1's, fused the other way round.
        raw.setdefault("fusion", "v0.1")
        # Files written before `tail_activation` existed have ReLU in the face tail.
        raw.setdefault("tail_activation", "relu")
        for key in ("mean", "std"):
            if key in raw:
                if not isinstance(raw[key], list):
                    raise ValueError(f"config {key} is not a list")
                raw[key] = tuple(raw[key])
        for key in ("name", "fusion", "tail_activation"):
            if key in raw and not isinstance(raw[key], str):
                raise ValueError(f"config {key}={raw[key]!r} is not a string")
        return cls(**raw)


PRESETS: dict[str, DHLNConfig] = {
    # The paper's DHLN (Sec. 3.1): 4 stacks, 256 ch at 64x64, 128x128 hallucinated face.
    # Parameter count against the paper's 22.72M: tests/test_model.py.
    "paper": DHLNConfig(name="paper"),
    # SHT-M (Sec. 4.3): 64x64 in, 256x256 face out through a longer upsampling tail.
    "sht-m": DHLNConfig(name="sht-m", face_size=256),
    # CPU real-time: 2 stacks, 96 ch, 32x32 features (stride-2 stem), 16-ch hallucination stream, 64x64 face.
    # Sized for >= 150 FPS batch 1 under ONNX Runtime on 2 cores (benchmarks/model_latency.py).
    "cpu-rt": DHLNConfig(name="cpu-rt", feature_size=32, face_size=64, num_stacks=2, channels=96,
                         sr_channels=16, sr_blocks=4, hourglass_depth=3, heatmap_sigma=1.0, fusion_kernel=1),
    # CPU small: the ladder's rung for faces under ~26 px (tracker.routing). 32x32 input, near such a face's own
    # resolution, 16x16 features, 80 ch; the SR stream hallucinates a 64x64 face from it (Eq. 1-2 as in cpu-rt).
    # 0.15 GFLOPs a face, under 1/4 of cpu-rt's 0.71 (sht_model.count_flops).
    "cpu-small": DHLNConfig(name="cpu-small", input_size=32, feature_size=16, face_size=64, num_stacks=2,
                            channels=80, sr_channels=16, sr_blocks=4, hourglass_depth=3, heatmap_sigma=1.0,
                            fusion_kernel=1),
    # CPU fast: cpu-rt with one stack (about half the work). Trained from cpu-rt's stem and first stack
    # (train --init-partial): the speed option of benchmarks/speed.py, less accurate (MODEL_CARD.md).
    "cpu-fast": DHLNConfig(name="cpu-fast", feature_size=32, face_size=64, num_stacks=1, channels=96,
                           sr_channels=16, sr_blocks=4, hourglass_depth=3, heatmap_sigma=1.0, fusion_kernel=1),
    # Tiny model for fast tests only.
    "test": DHLNConfig(name="test", feature_size=16, face_size=32, num_stacks=2, channels=16,
                       sr_channels=8, sr_blocks=2, hourglass_depth=2, heatmap_sigma=1.0),
}


def get_config(name: str, **overrides) -> DHLNConfig:
    if name not in PRESETS:
        raise KeyError(f"unknown preset {name!r}; choose from {sorted(PRESETS)}")
    if not overrides:
        return PRESETS[name]
    # A changed architecture is no longer the preset: its name says what was changed.
    changed = ",".join(f"{k}={v}" for k, v in sorted(overrides.items()))
    return dataclasses.replace(PRESETS[name], name=f"{name}[{changed}]", **overrides)


def config_from_metadata(path, text) -> DHLNConfig:
    """The DHLNConfig a weights file's metadata describes, or a WeightsError naming the file (missing, not JSON,
    unknown keys, wrong types, values out of range): checked before any layer is allocated."""
    from .errors import WeightsError

    if text is None:
        raise WeightsError(f"{path}: no model config in its metadata")
    try:
        return DHLNConfig.from_json(text)
    except (ValueError, TypeError) as exc:
        raise WeightsError(f"{path}: bad model config in its metadata ({str(exc).splitlines()[0][:200]})") from None
