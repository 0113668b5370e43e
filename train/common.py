"""What every training stage shares: the run config, distributed setup, logging, checkpoints, evaluation."""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import random
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import distributed as dist

from sht_model import DHLN, build_model, load_model, save_model
from sht_model.config import DHLNConfig
from sht_model.heatmap import decode, from_heatmap_coords

from . import metrics
from .data import NO_AUGMENT, LabelledFaces

log = logging.getLogger("shtrack.train")


@dataclass
class TrainConfig:
    stage: str = "dhln"
    preset: str = "cpu-rt"
    data: str = "../shared/data/300w_train"          # labelled faces (300W layout)
    videos: str = ""                                  # clips for the sht stage (folders, comma-separated)
    video_labels: str = ""                            # teacher labels of those clips (300VW layout), optional
    out: str = "runs/default"
    init: str = ""                                    # DHLN weights to start from (safetensors)
    fptn_init: str = ""                               # FPTN weights to start from (safetensors)
    vgg19_weights: str = ""                           # torchvision VGG-19 state dict; none -> no perceptual term
    steps: int = 2000
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 1e-4
    warmup: int = 100
    eval_every: int = 250
    ckpt_every: int = 250
    stop_after: int = 0                               # stop, checkpointed, after this step; 0 = at --steps
    log_every: int = 25
    seed: int = 0
    workers: int = 1
    threads: int = 0                                  # torch intra-op threads; 0 = torch's default
    val_fraction: float = 0.1
    val_widths: tuple[float, ...] = (16.0, 32.0)
    unlabelled_fraction: float = 0.5                 # share of video pairs in an sht batch
    fptn_lr: float = 2e-4                             # sht: FPTN's own learning rate (the fptn stage's)
    fptn_channels: int = 32
    fptn_blocks: int = 4
    amp: bool = True                                  # only takes effect on CUDA
    resume: bool = False
    max_records: int = 0                              # cap the labelled set (tests); 0 = all
    freeze_bn: bool = False                           # dhln/sht: keep DHLN's BatchNorm statistics fixed
    init_partial: bool = False                        # build --preset, copy the --init tensors that fit
    aug_angle: float = 30.0                           # every stage: rotation augmentation, +- degrees (paper: 30)
    aug_scale: float = 0.2                            # every stage: scale augmentation, 1 +- this (paper: 0.8-1.2)
    aug_shift: float = 0.05                           # every stage: box-centre jitter, fraction of the face box
    aug_box_jitter: float = 0.07                      # every stage: log-normal sigma of the box size jitter
    aug_flip: bool = True                             # every stage: mirror half the samples (MODEL_CARD.md:
                                                      # mirroring is not a symmetry of 300W's x labels)
    degrade: str = "mixed"                            # input degradation: mixed (12-64 px faces, blur,
                                                      # noise, JPEG) or sht-m (256 -> 64 bicubic; train/degrade.py)
    min_face_width: float = 12.0                      # mixed: face widths drawn log-uniform in [min, max] px
    max_face_width: float = 64.0
    blur_prob: float = 0.3                            # mixed: chance of each degradation
    noise_prob: float = 0.3
    jpeg_prob: float = 0.3                            # mixed: JPEG; cctv: a video codec or JPEG
    light_prob: float = 0.0                           # cctv: low light / gamma
    occlude_prob: float = 0.0                         # an occluder on part of the face (hand, object, face patch)
    composite_prob: float = 0.0                       # the face pasted onto another picture's background
    teacher: str = ""                                 # teacher-labelled faces (300W layout, train.label faces)
    distill: str = ""                                 # dhln: a trained DHLN whose decoded heatmaps are also targets
    distill_weight: float = 1.0                       # dhln: weight of that term against the label heatmaps
    teacher_fraction: float = 0.5                     # dhln/sht: share of teacher-labelled faces in a batch
    images: str = ""                                  # sht: unlabelled photos for image pairs (SHT-i; folders,
                                                      # comma-separated)
    unlabelled_pairs: str = "video"                   # sht: video (two frames of a clip, SHT-v), image (two
                                                      # rotations/scales of one photo or frame, SHT-i), or both
    ema_decay: float = 0.0                            # dhln: keep an exponential moving average of the
                                                      # weights (e.g. 0.998) and ship/score it; 0 = off
    loss_weights: str = ""                            # gamma/lambda replaced, e.g. "pixel=1"; "" = the paper's

    def __post_init__(self):
        # Types first: a config file's "steps = 'two'" is a one-line error here, not a crash hours later.
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            kind = {"int": int, "float": (int, float), "str": str, "bool": bool}.get(f.type)
            if kind is not None and (not isinstance(value, kind) or (f.type != "bool" and isinstance(value, bool))):
                raise ValueError(f"{f.name} must be {f.type}, not {value!r}")
            if f.type == "float" and not math.isfinite(value):
                raise ValueError(f"{f.name} must be a finite number, not {value!r}")
        if self.stage not in ("dhln", "fptn", "sht"):
            raise ValueError(f"unknown stage {self.stage!r}; choose from dhln, fptn, sht")
        from sht_model.config import PRESETS

        if self.preset not in PRESETS:
            raise ValueError(f"unknown preset {self.preset!r}; choose from {', '.join(sorted(PRESETS))}")
        for name in ("steps", "batch_size", "eval_every", "ckpt_every", "log_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, not {getattr(self, name)}")
        if not 0 < self.lr <= 1 or not 0 <= self.fptn_lr <= 1:
            raise ValueError(f"lr must be in (0, 1], not {self.lr}")
        if self.warmup < 0 or self.workers < 0 or self.threads < 0 or self.stop_after < 0 or self.max_records < 0:
            raise ValueError("warmup, workers, threads, stop_after and max_records must be >= 0")
        if self.threads > 4 * (os.cpu_count() or 1) or self.workers > 4 * (os.cpu_count() or 1):
            raise ValueError(f"threads and workers are at most {4 * (os.cpu_count() or 1)} (a few per core)")
        if not 0 < self.val_fraction < 1:
            raise ValueError(f"val_fraction must be in (0, 1), not {self.val_fraction}")
        if self.unlabelled_pairs not in ("video", "image", "both"):
            raise ValueError(f"unlabelled_pairs must be video, image or both, not {self.unlabelled_pairs!r}")
        if self.distill_weight < 0:
            raise ValueError(f"distill_weight must be >= 0, not {self.distill_weight}")
        if not 0 <= self.teacher_fraction < 1:
            raise ValueError(f"teacher_fraction must be in [0, 1), not {self.teacher_fraction}")
        self.degrade_config()   # raises on a bad protocol or range
        self.loss_weights_config()   # raises on an unknown name or a bad number

    def degrade_config(self):
        from .degrade import DegradeConfig

        return DegradeConfig(self.degrade, self.min_face_width, self.max_face_width, self.blur_prob,
                             self.noise_prob, self.jpeg_prob, self.light_prob, self.occlude_prob, self.composite_prob)

    def loss_weights_config(self):
        from .losses import LossWeights

        return LossWeights.parse(self.loss_weights)

    @classmethod
    def from_file(cls, path: str | Path, **overrides) -> "TrainConfig":
        try:
            text = Path(path).read_text()
            raw = json.loads(text) if str(path).endswith(".json") else tomllib.loads(text)
        except (OSError, UnicodeDecodeError) as exc:
            raise ValueError(f"{path}: cannot read the config ({getattr(exc, 'strerror', None) or exc.__class__.__name__})") from None
        except (ValueError, tomllib.TOMLDecodeError) as exc:
            raise ValueError(f"{path}: not valid {'JSON' if str(path).endswith('.json') else 'TOML'} ({exc})") from None
        if not isinstance(raw, dict):
            raise ValueError(f"{path}: the config is not a table of keys")
        known = {f.name for f in dataclasses.fields(cls)}
        bad = set(raw) - known
        if bad:
            raise ValueError(f"{path}: unknown keys {sorted(bad)}")
        raw.update({k: v for k, v in overrides.items() if v is not None})
        if "val_widths" in raw:
            if not isinstance(raw["val_widths"], list):
                raise ValueError(f"{path}: val_widths must be a list of numbers")
            raw["val_widths"] = tuple(raw["val_widths"])
        return cls(**raw)


@dataclass
class Runtime:
    """Process-level facts of a run: device, rank, world size, the TensorBoard writer."""
    device: torch.device
    rank: int = 0
    world: int = 1
    writer: object | None = None
    started: float = field(default_factory=time.time)    # moved back by the seconds of a resumed run

    @property
    def seconds(self) -> float:
        """Wall seconds of training so far, over every invocation of a resumed run (up to its checkpoints)."""
        return time.time() - self.started

    @property
    def main(self) -> bool:
        return self.rank == 0


def setup(cfg: TrainConfig) -> Runtime:
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    if torch.cuda.is_available():
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    else:
        device = torch.device("cpu")
    seed = cfg.seed + rank
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    rt = Runtime(device=device, rank=rank, world=world)
    if rt.main:
        Path(cfg.out).mkdir(parents=True, exist_ok=True)
        (Path(cfg.out) / "config.json").write_text(json.dumps(dataclasses.asdict(cfg), indent=2))
        try:
            from torch.utils.tensorboard import SummaryWriter

            rt.writer = SummaryWriter(str(Path(cfg.out) / "tb"))
        except ImportError:
            log.warning("tensorboard not installed: no event files (pip install 'shtrack[train]')")
    return rt


def teardown(rt: Runtime) -> None:
    if rt.writer is not None:
        rt.writer.close()
    if dist.is_initialized():
        dist.destroy_process_group()


def freeze_batchnorm(model: torch.nn.Module) -> None:
    """BatchNorm layers to eval mode (running statistics stay as trained); weights still learn."""
    for m in model.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.eval()


def lr_at(step: int, cfg: TrainConfig) -> float:
    """Linear warm-up, then cosine decay to 5% of the peak."""
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    progress = min(1.0, (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup))
    return cfg.lr * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * progress)))


def log_scalars(rt: Runtime, step: int, scalars: dict, prefix: str = "train") -> None:
    if not rt.main:
        return
    if rt.writer is not None:
        for k, v in scalars.items():
            rt.writer.add_scalar(f"{prefix}/{k}", float(v), step)
    text = " ".join(f"{k}={float(v):.4g}" for k, v in scalars.items())
    log.info("step %d %s: %s (%.0fs)", step, prefix, text, rt.seconds)


def init_dhln(cfg: TrainConfig) -> DHLN:
    if cfg.init and cfg.init_partial:
        return transplant(load_model(cfg.init), build_model(cfg.preset)).train()
    if cfg.init:
        model = load_model(cfg.init)
        if model.cfg.name != cfg.preset:
            log.info("init weights are preset %r (config said %r): using the weights' config", model.cfg.name, cfg.preset)
        return model.train()
    return build_model(cfg.preset)


def transplant(source: DHLN, target: DHLN) -> DHLN:
    """Copy every tensor of `source` whose name and shape `target` shares (e.g. the stem and first stack of a
    2-stack model into a 1-stack one: stack 0 is trained to predict heatmaps on its own by intermediate
    supervision, so the smaller model starts where the larger one's first stack was)."""
    theirs, ours = source.state_dict(), target.state_dict()
    fits = {k: v for k, v in theirs.items() if k in ours and ours[k].shape == v.shape}
    # Judge relatedness on real tensors: BatchNorm step counters are scalars and fit any model, and a few
    # 68-wide biases fit anything with 68 points.
    real = [k for k in ours if not k.endswith("num_batches_tracked")]
    real_fits = sum(k in fits for k in real)
    if real_fits < len(real) / 2:
        raise ValueError(f"only {real_fits} of {len(real)} tensors of preset {target.cfg.name!r} fit preset "
                         f"{source.cfg.name!r}: not a smaller version of it")
    target.load_state_dict(fits, strict=False)
    log.info("init-partial: %d of %d tensors of preset %r copied from preset %r; %d start fresh",
             len(fits), len(ours), target.cfg.name, source.cfg.name, len(ours) - len(fits))
    return target


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    return model.module if hasattr(model, "module") else model


def save_checkpoint(cfg: TrainConfig, rt: Runtime, step: int, modules: dict, optimizers: dict, extra: dict) -> None:
    """Model weights as safetensors (usable on their own), optimiser state beside them (weights_only-safe). Both
    record the training's wall seconds so far (a resumed run adds to them: the chain's wall time per step)."""
    if not rt.main:
        return
    out = Path(cfg.out)
    seconds = round(rt.seconds, 1)
    dhln = unwrap(modules["dhln"]) if "dhln" in modules else None
    if dhln is not None:
        save_model(dhln, out / "last.safetensors", extra={"step": step, "stage": cfg.stage, "seconds": seconds, **extra})
    state = {"step": step, "seconds": seconds,
             "modules": {k: unwrap(m).state_dict() for k, m in modules.items() if k != "dhln"},
             "optimizers": {k: o.state_dict() for k, o in optimizers.items()}}
    tmp = out / "state.pt.partial"
    torch.save(state, tmp)
    tmp.replace(out / "state.pt")
    if "fptn" in modules:
        from safetensors.torch import save_file

        sd = {k: v.contiguous() for k, v in unwrap(modules["fptn"]).state_dict().items()}
        save_file(sd, str(out / "fptn.safetensors"),
                  metadata={"format": "shtrack-fptn/1", "config": json.dumps(dataclasses.asdict(unwrap(modules["fptn"]).cfg))})


def load_checkpoint(cfg: TrainConfig, rt: Runtime, modules: dict, optimizers: dict) -> int:
    """Resume: returns the step to continue from (0 when there is nothing to resume); the run's clock
    (rt.seconds) continues from the checkpoint's (the time after the last checkpoint was lost and is redone)."""
    out = Path(cfg.out)
    if not cfg.resume or not (out / "state.pt").exists():
        return 0
    state = torch.load(out / "state.pt", map_location="cpu", weights_only=True)
    if "dhln" in modules:
        unwrap(modules["dhln"]).load_state_dict(load_model(out / "last.safetensors").state_dict())
    for k, sd in state["modules"].items():
        unwrap(modules[k]).load_state_dict(sd)
    for k, sd in state["optimizers"].items():
        optimizers[k].load_state_dict(sd)
    rt.started -= float(state.get("seconds", 0.0))     # checkpoints before 2026-11-26 did not record it
    log.info("resumed %s at step %d after %.0fs of training", out, state["step"], rt.seconds)
    return int(state["step"])


def face_errors(heatmaps_of, cfg: DHLNConfig, records, widths, seed: int = 1234, batch: int = 64,
                degrade_cfg=None) -> dict:
    """Per-face NME (inter-ocular) on held-out labelled faces degraded to each face width, in record order;
    deterministic. {"16px": errors, ...}

    heatmaps_of: a batch of normalised inputs (torch, N x 3 x S x S) -> last-stack heatmaps (numpy), so a torch
    model (evaluate_faces) and an ONNX Runtime backend (benchmarks.model_card) are scored the same way.
    """
    errors = {}
    # One dataset for every width: its image cache is read from disk once, not once per width.
    ds = LabelledFaces(records, cfg, aug=NO_AUGMENT, seed=seed) if degrade_cfg is None else \
        LabelledFaces(records, cfg, aug=NO_AUGMENT, degrade_cfg=degrade_cfg, seed=seed)
    for width in widths:
        ds.face_width = float(width)
        preds, gts = [], []
        for start in range(0, len(ds), batch):
            items = [ds[i] for i in range(start, min(len(ds), start + batch))]
            xy, _ = decode(heatmaps_of(torch.stack([it["input"] for it in items])), cfg.heatmap_sigma)
            preds.append(from_heatmap_coords(xy, cfg.input_size, cfg.feature_size))
            gts.append(np.stack([it["landmarks"].numpy() for it in items]))
        errors[f"{int(width)}px"] = metrics.nme(np.concatenate(preds), np.concatenate(gts))
    return errors


def summarise_errors(errors: dict) -> dict:
    """Per-width face errors (face_errors) -> NME, FR@0.08 per width."""
    return {w: metrics.summary(e, 0.08) for w, e in errors.items()}


def score_faces(heatmaps_of, cfg: DHLNConfig, records, widths, seed: int = 1234, batch: int = 64,
                degrade_cfg=None) -> dict:
    """face_errors summarised per width: NME, FR@0.08 (degrade_cfg: another protocol, e.g. cctv-eval)."""
    return summarise_errors(face_errors(heatmaps_of, cfg, records, widths, seed, batch, degrade_cfg))


@torch.no_grad()
def evaluate_face_errors(model: DHLN, records, widths, device, seed: int = 1234, batch: int = 64) -> dict:
    """face_errors for a torch DHLN (in eval mode for the call)."""
    was = model.training
    model.eval()
    errors = face_errors(lambda x: model(x.to(device)).heatmaps[-1].float().cpu().numpy(), model.cfg, records,
                         widths, seed, batch)
    model.train(was)
    return errors


def evaluate_faces(model: DHLN, records, widths, device, seed: int = 1234, batch: int = 64) -> dict:
    """score_faces for a torch DHLN (in eval mode for the call)."""
    return summarise_errors(evaluate_face_errors(model, records, widths, device, seed, batch))
