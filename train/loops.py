"""The training stages, one loop each (SHT paper, Sec. 3.3 and 4.1):

1. `dhln`: DHLN alone on labelled faces (Eq. 4).
2. `fptn`: FPTN pretrained on true heatmaps: (face_a, H_a, H_b) -> face_b with GAN + L1 + perceptual.
3. `sht`:  DHLN and FPTN together on pairs (Eq. 9-10). FPTN moves DHLN's hallucinated face of one view
   to DHLN's heatmaps of the other; its loss flows back into DHLN through both. Labelled pairs keep the
   heatmap term (gamma1 = 1), unlabelled video pairs drop it (gamma1 = 0).
"""

from __future__ import annotations

import copy
import itertools
import json
import logging
from pathlib import Path
from typing import NamedTuple

import torch
from torch.nn.parallel import DistributedDataParallel
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from torch.utils.data import ConcatDataset, DataLoader, DistributedSampler

from sht_model import FPTN, FPTNConfig
from sht_model.dhln import DHLNOutput
from sht_model.fptn import appearance_input, shape_input

from . import losses
from .common import (Runtime, TrainConfig, evaluate_faces, freeze_batchnorm, init_dhln, load_checkpoint,
                     log_scalars, lr_at, save_checkpoint, unwrap)
from .data import Augment, LabelledFaces, LabelledPairs, split_records
from .readers import read_300w

log = logging.getLogger("shtrack.train")


def _records(cfg: TrainConfig):
    train, val = split_records(read_300w(cfg.data), cfg.val_fraction)
    if cfg.max_records:
        train, val = train[:cfg.max_records], val[:max(2, cfg.max_records // 4)]
    return train, val


def _mix(main: list, extra: list, fraction: float) -> list:
    """`main` repeated so that `extra` makes up about `fraction` of the items (a few hundred human-labelled faces
    beside tens of thousands of teacher-labelled ones keep their share)."""
    if not extra or fraction <= 0:
        return main
    n_main, n_extra = sum(len(d) for d in main), sum(len(d) for d in extra)
    repeats = max(1, round(n_extra * (1 - fraction) / fraction / max(n_main, 1)))
    return [_reseeded(d, k) for k in range(repeats) for d in main] + extra


def _reseeded(dataset, k: int):
    """The k-th copy of a dataset in a mix: the same faces and image cache, its own augmentation draws (a repeat
    with the same seed would give the same samples twice an epoch)."""
    if k == 0:
        return dataset
    twin = copy.copy(dataset)
    twin.seed = dataset.seed + 1000 * k
    return twin


def _teacher_records(cfg: TrainConfig):
    """Every face of --teacher (teacher-labelled, none held out: the held-out faces are human-labelled 300W)."""
    if not cfg.teacher:
        return []
    records = read_300w(cfg.teacher)
    log.info("teacher: %d teacher-labelled faces from %s, %.0f%% of each batch", len(records), cfg.teacher,
             100 * cfg.teacher_fraction)
    return records


def _batches(dataset, cfg: TrainConfig, rt: Runtime, start: int = 0):
    """Endless batches, a new augmentation draw every epoch (samples are drawn from (seed, epoch, index)).
    The first `start` batches, a resumed run's finished steps, are skipped without being loaded, so a resumed
    run trains on the batches an uninterrupted one would have."""
    sampler = DistributedSampler(dataset, rt.world, rt.rank, seed=cfg.seed) if rt.world > 1 else None
    drop_last = len(dataset) >= cfg.batch_size
    for epoch in itertools.count():
        if sampler is not None:
            sampler.set_epoch(epoch)
        # The epoch's batches of indices: a shuffling DataLoader over the indices alone, with the epoch's
        # generator, draws the order one over the samples draws (runs checkpointed by earlier versions, which
        # loaded the samples through such a DataLoader, resume in their own order).
        order = list(DataLoader(range(len(dataset)), batch_size=cfg.batch_size, shuffle=sampler is None,
                                sampler=sampler, drop_last=drop_last,
                                generator=torch.Generator().manual_seed(cfg.seed + epoch)))
        if start >= len(order):
            start -= len(order)
            continue
        for ds in getattr(dataset, "datasets", [dataset]):
            ds.epoch = epoch
        yield from DataLoader(dataset, batch_sampler=[b.tolist() for b in order[start:]], num_workers=cfg.workers,
                              generator=torch.Generator().manual_seed(cfg.seed + epoch))
        start = 0


def _to(batch, device):
    if isinstance(batch, dict):
        return {k: _to(v, device) for k, v in batch.items()}
    layout = torch.channels_last if batch.dim() == 4 else torch.preserve_format
    return batch.to(device, memory_format=layout, non_blocking=True)


def _place(module: torch.nn.Module, rt: Runtime) -> torch.nn.Module:
    """On the run's device, 4-D weights channels-last: on this project's 2-core CPU a cpu-rt training step
    (batch 32, forward and backward) takes 0.95-1.2 s channels-last against 1.25-1.5 s in the default layout.
    Only the layout changes; checkpoints are saved contiguous."""
    return module.to(rt.device, memory_format=torch.channels_last)


def _wrap(model, rt: Runtime, find_unused_parameters: bool = False):
    model = _place(model, rt)
    return DistributedDataParallel(model, find_unused_parameters=find_unused_parameters) if rt.world > 1 else model


class Precision:
    """Mixed precision, chosen once for every stage: with --amp on CUDA, float16 autocast and a GradScaler;
    otherwise float32 and the scaler passes everything through unchanged."""

    def __init__(self, cfg: TrainConfig, rt: Runtime):
        self.device_type = rt.device.type
        self.enabled = cfg.amp and self.device_type == "cuda"
        self.scaler = torch.amp.GradScaler(self.device_type, enabled=self.enabled)

    def autocast(self):
        return torch.autocast(self.device_type, enabled=self.enabled)

    def backward(self, loss: torch.Tensor) -> None:
        self.scaler.scale(loss).backward()

    def step(self, optimizer, clip: list | None = None) -> None:
        """Unscale, clip the gradients of `clip` (max norm 5), step."""
        if clip is not None:
            self.scaler.unscale_(optimizer)
            torch.nn.utils.clip_grad_norm_(clip, 5.0)
        self.scaler.step(optimizer)

    def update(self) -> None:     # once per iteration, after every optimiser stepped
        self.scaler.update()


class Loop:
    """What every stage's loop shares: resuming (weights, optimisers and the data order), the learning-rate
    schedule (per optimiser, scaled), when to log, and the evaluation and checkpoint after each step. The stage
    writes only its step:

        loop = Loop(cfg, rt, modules, optimizers)
        batches = loop.batches(dataset)
        for step in loop.steps():
            batch = next(batches)
            ...forward, backward, optimiser steps...
            if loop.logging(step): loop.log(step, {...})
    """

    def __init__(self, cfg: TrainConfig, rt: Runtime, modules: dict, optimizers: dict,
                 lr_scale: dict[str, float] | None = None, evaluate=None, val=None):
        self.cfg, self.rt, self.modules, self.optimizers = cfg, rt, modules, optimizers
        self.lr_scale = lr_scale or {}
        self.evaluate, self.val, self.best = evaluate, val, float("inf")
        self.start = load_checkpoint(cfg, rt, modules, optimizers)
        best = Path(cfg.out) / "best_val.json"
        if self.start and best.exists():   # resumed: best.safetensors is replaced only by a better evaluation
            self.best = _mean_nme(json.loads(best.read_text())["val"])
        self.precision = Precision(cfg, rt)

    def steps(self):
        cfg = self.cfg
        end = min(cfg.steps, cfg.stop_after) if cfg.stop_after else cfg.steps
        for step in range(self.start, end):
            for name, opt in self.optimizers.items():
                for group in opt.param_groups:
                    group["lr"] = lr_at(step, cfg) * self.lr_scale.get(name, 1.0)
            try:
                yield step
            except GeneratorExit:
                # The loop body stopped at this step (an error, Ctrl-C): the steps before it are kept, so
                # --resume redoes only this one (the data order is that of the steps done).
                if step > self.start and step % cfg.ckpt_every:
                    save_checkpoint(cfg, self.rt, step, self.modules, self.optimizers, {})
                    log.info("checkpoint at step %d kept (the run stopped during step %d)", step, step + 1)
                raise
            last = step == cfg.steps - 1
            if self.evaluate is not None and ((step + 1) % cfg.eval_every == 0 or last):
                self.best = _evaluate(cfg, self.rt, self.evaluate, self.val, step + 1, self.best)
            if (step + 1) % cfg.ckpt_every == 0 or step + 1 == end:
                save_checkpoint(cfg, self.rt, step + 1, self.modules, self.optimizers, {})

    def batches(self, dataset):
        """The stage's endless batches, from the one a resumed run is at."""
        return _batches(dataset, self.cfg, self.rt, start=self.start)

    def logging(self, step: int) -> bool:
        return step % self.cfg.log_every == 0 or step == self.cfg.steps - 1

    def log(self, step: int, scalars: dict) -> None:
        log_scalars(self.rt, step, scalars)


def _evaluate(cfg, rt, model, val, step, best):
    if not rt.main or not val:
        return best
    scores = evaluate_faces(unwrap(model), val, cfg.val_widths, rt.device)
    log_scalars(rt, step, {k: v["nme"] for k, v in scores.items()}, prefix="val_nme")
    mean = _mean_nme(scores)
    if mean < best:
        from sht_model import save_model

        save_model(unwrap(model), Path(cfg.out) / "best.safetensors",
                   extra={"step": step, "stage": cfg.stage, "val": scores})
        (Path(cfg.out) / "best_val.json").write_text(json.dumps({"step": step, "val": scores}, indent=2))
        best = mean
    return best


def _mean_nme(scores: dict) -> float:
    """The figure best.safetensors is chosen by: NME averaged over the --val-widths."""
    return sum(v["nme"] for v in scores.values()) / len(scores)


def augment(cfg: TrainConfig) -> Augment:
    """The --aug-* flags: labelled faces of every stage, and the two views of rotation/scale pairs."""
    return Augment(max_angle=cfg.aug_angle, scale_range=(1.0 - cfg.aug_scale, 1.0 + cfg.aug_scale),
                   shift=cfg.aug_shift, box_scale_jitter=cfg.aug_box_jitter, flip=cfg.aug_flip)


def train_dhln(cfg: TrainConfig, rt: Runtime) -> Path:
    train, val = _records(cfg)
    model = _wrap(init_dhln(cfg), rt)
    # --aug-angle / --aug-scale (and --aug-shift / --aug-box-jitter) below the defaults (the paper's +-30 deg /
    # 0.8-1.2): a last fine-tune on faces posed like the tracker's upright, landmark-boxed crops (MODEL_CARD.md).
    # --no-aug-flip: 300W's x labels sit ~0.9 px (at label resolution) right of where mirroring puts them, so a
    # model trained on mirrored faces splits the difference and lands that far left on unmirrored ones; a last
    # fine-tune without mirroring learns the labels' x convention as it learns their y convention.
    model_cfg, degrade = unwrap(model).cfg, cfg.degrade_config()
    teacher = _teacher_records(cfg)
    dataset = ConcatDataset(_mix([LabelledFaces(train, model_cfg, augment(cfg), degrade, seed=cfg.seed)],
                                 [LabelledFaces(teacher, model_cfg, augment(cfg), degrade, seed=cfg.seed + 5)]
                                 if teacher else [], cfg.teacher_fraction))
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    # With --ema-decay the run's result (last/best.safetensors, the scores) is the moving average of the
    # weights, for schedules that end noisy; the live weights go on training from state.pt. (At the end of the
    # shipped cosine runs it made no measurable difference: MODEL_CARD.md.)
    ema = AveragedModel(unwrap(model), multi_avg_fn=get_ema_multi_avg_fn(cfg.ema_decay), use_buffers=True) \
        if cfg.ema_decay else None
    modules = {"dhln": ema.module, "live": model} if ema else {"dhln": model}
    loop = Loop(cfg, rt, modules, {"opt": opt}, evaluate=modules["dhln"], val=val)
    if ema is not None and loop.start:
        ema.n_averaged.fill_(loop.start)  # resumed: the average has history (0 would restart it from the live weights)
    weights = cfg.loss_weights_config()
    teacher_model = None
    if cfg.distill:
        from sht_model import load_model

        teacher_model = _place(load_model(cfg.distill), rt).eval()
        for param in teacher_model.parameters():
            param.requires_grad_(False)
    log.info("dhln: %d train / %d held-out faces, preset %s%s%s", len(train), len(val), unwrap(model).cfg.name,
             f", weights averaged (EMA {cfg.ema_decay})" if ema else "",
             f", distilled from {cfg.distill} (x{cfg.distill_weight})" if teacher_model is not None else "")
    batches = loop.batches(dataset)
    for step in loop.steps():
        batch = _to(next(batches), rt.device)
        if cfg.freeze_bn:   # fine-tune the network exactly as it runs at inference
            freeze_batchnorm(model)
        with loop.precision.autocast():
            out = model(batch["input"])
            terms = losses.dhln_terms(out.heatmaps, out.face, batch["heatmaps"], batch["face"], weights)
            if teacher_model is not None:
                soft = losses.distillation_targets(teacher_model, batch["input"], model_cfg)
                terms["distill"] = cfg.distill_weight * losses.heatmap_loss(out.heatmaps, soft).mean()
            loss = sum(terms.values())
        shares = losses.gradient_shares(list(model.parameters()), terms) if loop.logging(step) else {}
        opt.zero_grad(set_to_none=True)
        loop.precision.backward(loss)
        loop.precision.step(opt, clip=list(model.parameters()))
        loop.precision.update()
        if ema is not None:
            ema.update_parameters(unwrap(model))
        if loop.logging(step):
            loop.log(step, {"loss": loss.detach(), **{k: v.detach() for k, v in terms.items()},
                            **{f"grad_share_{k}": v for k, v in shares.items()}, "lr": opt.param_groups[0]["lr"]})
    return Path(cfg.out) / "last.safetensors"


def _fptn(cfg: TrainConfig, face_size: int) -> FPTN:
    fptn = FPTN(FPTNConfig(face_size=face_size, channels=cfg.fptn_channels, num_blocks=cfg.fptn_blocks))
    if cfg.fptn_init:
        from safetensors.torch import load_file

        fptn.load_state_dict(load_file(cfg.fptn_init))
    return fptn


class FPTNParts(NamedTuple):
    """FPTN's generator and two discriminators, each wrapped on its own for DistributedDataParallel (every
    gradient then comes from a wrapped forward and is averaged across processes)."""
    generator: torch.nn.Module
    d_appearance: torch.nn.Module
    d_shape: torch.nn.Module

    @classmethod
    def wrap(cls, fptn: FPTN, rt: Runtime) -> "FPTNParts":
        # The last PATB block's pose update feeds nothing (the generator returns the image stream), so DDP
        # must expect parameters without a gradient there.
        return cls(_wrap(fptn.generator, rt, find_unused_parameters=True), _wrap(fptn.d_appearance, rt),
                   _wrap(fptn.d_shape, rt))

    def optimizers(self, lr: float):
        """(generator's, discriminators') Adam optimisers, as in pix2pix-style training."""
        g = torch.optim.Adam(self.generator.parameters(), lr=lr, betas=(0.5, 0.999))
        d = torch.optim.Adam(list(self.d_appearance.parameters()) + list(self.d_shape.parameters()),
                             lr=lr, betas=(0.5, 0.999))
        return g, d


def _vgg(cfg: TrainConfig, rt: Runtime):
    if not cfg.vgg19_weights:
        log.warning("no --vgg19-weights: training WITHOUT the perceptual term (lambda3 = 0)")
        return None
    return _place(losses.VGG19Conv12(cfg.vgg19_weights), rt)


def _generator_loss(fptn, vgg, cond_face, cond_hm, target_hm, target_face, w: losses.LossWeights):
    """FPTN generator objective: LSGAN on both discriminators + L1 + perceptual L1 (norms per sample, like
    Eq. 4's: train/losses.py). `fptn`: an FPTN or FPTNParts. Returns (weighted terms, fake, logged parts).

    The discriminators' conditioning inputs (the condition face for D_A, the target heatmaps for D_S) are
    detached: in the sht stage they are DHLN's outputs, and the adversarial term should not train DHLN to make
    the discriminators' task easier; it reaches DHLN only through the generated face, like L1."""
    fake = fptn.generator(cond_face, cond_hm, target_hm)
    gan = losses.lsgan(fptn.d_appearance(appearance_input(cond_face.detach(), fake)), True) + \
        losses.lsgan(fptn.d_shape(shape_input(target_hm.detach(), fake)), True)
    l1 = losses.pixel_loss(fake, target_face).mean()
    perc = losses.perceptual_loss(vgg, fake, target_face)
    terms = {"gan": w.gan * gan, "l1": w.transfer_l1 * l1, "perceptual": w.perceptual * perc}
    return terms, fake, {"gan_g": gan.detach(), "l1": l1.detach(), "perceptual": perc.detach()}


def _discriminator_loss(fptn, cond_face, target_hm, real, fake):
    """LSGAN for D_A and D_S. Real and fake go through each discriminator in one batch (one forward per
    backward, as DistributedDataParallel needs; instance norm keeps the samples apart)."""
    n = len(real)
    faces = torch.cat([real, fake.detach()])
    logits_a = fptn.d_appearance(appearance_input(torch.cat([cond_face, cond_face]), faces))
    logits_s = fptn.d_shape(shape_input(torch.cat([target_hm, target_hm]), faces))
    d_a = losses.lsgan(logits_a[:n], True) + losses.lsgan(logits_a[n:], False)
    d_s = losses.lsgan(logits_s[:n], True) + losses.lsgan(logits_s[n:], False)
    return 0.5 * (d_a + d_s)


def train_fptn(cfg: TrainConfig, rt: Runtime) -> Path:
    """Pretrain FPTN on true heatmaps and HR faces of labelled rotation/scale pairs."""
    train, _ = _records(cfg)
    dhln_cfg = init_dhln(cfg).cfg
    fptn = _place(_fptn(cfg, dhln_cfg.face_size), rt)
    parts = FPTNParts.wrap(fptn, rt)
    vgg = _vgg(cfg, rt)
    dataset = LabelledPairs(train, dhln_cfg, augment(cfg), cfg.degrade_config(), seed=cfg.seed)
    opt_g, opt_d = parts.optimizers(cfg.lr)
    loop = Loop(cfg, rt, {"fptn": fptn}, {"g": opt_g, "d": opt_d})
    w, precision = cfg.loss_weights_config(), loop.precision
    batches = loop.batches(dataset)
    for step in loop.steps():
        batch = _to(next(batches), rt.device)
        a, b = batch["a"], batch["b"]
        with precision.autocast():
            terms, fake, logged = _generator_loss(parts, vgg, a["face"], a["heatmaps"], b["heatmaps"], b["face"], w)
            loss_g = sum(terms.values())
        opt_g.zero_grad(set_to_none=True)
        precision.backward(loss_g)
        precision.step(opt_g)
        with precision.autocast():
            loss_d = _discriminator_loss(parts, a["face"], b["heatmaps"], b["face"], fake)
        opt_d.zero_grad(set_to_none=True)
        precision.backward(loss_d)
        precision.step(opt_d)
        precision.update()
        if loop.logging(step):
            loop.log(step, {"loss_g": loss_g.detach(), "loss_d": loss_d.detach(), **logged})
    return Path(cfg.out) / "fptn.safetensors"


def _sht_pairs(cfg: TrainConfig, train, dhln_cfg) -> ConcatDataset:
    """Labelled rotation/scale pairs (gamma1 = 1), teacher-labelled video pairs (gamma1 = 1) and unlabelled pairs
    (gamma1 = 0) mixed to --unlabelled-fraction: video pairs (SHT-v: two frames of a training clip), image pairs
    (SHT-i: two rotations/scales of one photo of --images or one frame of a training clip) or both
    (--unlabelled-pairs)."""
    from .video import ImagePairs, VideoPairs, decode_photos

    degrade = cfg.degrade_config()
    teacher = _teacher_records(cfg)
    parts = _mix([LabelledPairs(train, dhln_cfg, augment(cfg), degrade, seed=cfg.seed)],
                 [LabelledPairs(teacher, dhln_cfg, augment(cfg), degrade, seed=cfg.seed + 5)] if teacher else [],
                 cfg.teacher_fraction)
    video_aug = Augment(max_angle=10.0, flip=cfg.aug_flip)
    taught = None
    if cfg.videos and cfg.video_labels:
        taught = VideoPairs(cfg.videos, dhln_cfg, seed=cfg.seed, labels=cfg.video_labels, aug=video_aug,
                            degrade_cfg=degrade)
        parts.append(taught)
        log.info("sht: %d teacher-labelled video frames (gamma1 = 1)", len(taught))
    if cfg.unlabelled_fraction <= 0:
        return ConcatDataset(parts)
    unlabelled = []
    clips = taught.clips if taught is not None else None
    if cfg.unlabelled_pairs in ("video", "both") and cfg.videos:
        # With teacher labels, the same decoded frames also serve as unlabelled pairs (labels dropped).
        video = VideoPairs(cfg.videos, dhln_cfg, seed=cfg.seed + 1, clips=clips, drop_labels=taught is not None,
                           aug=video_aug, degrade_cfg=degrade)
        clips = video.clips
        unlabelled.append(video)
    if cfg.unlabelled_pairs in ("image", "both"):
        faces = decode_photos(cfg.images) if cfg.images else []
        if cfg.videos:   # every kept frame of the training clips is a still too
            clips = clips if clips is not None else VideoPairs(cfg.videos, dhln_cfg, seed=cfg.seed).clips
            faces += [(image, box, None) for frames in clips for image, box, _ in frames]
        unlabelled.append(ImagePairs(faces, dhln_cfg, seed=cfg.seed + 2, aug=augment(cfg), degrade_cfg=degrade))
    if not unlabelled:
        log.warning("sht: labelled pairs only (--unlabelled-pairs %s has no source: give %s)", cfg.unlabelled_pairs,
                    "--videos" if cfg.unlabelled_pairs == "video" else "--images or --videos")
        return ConcatDataset(parts)
    labelled = sum(len(d) for d in parts)
    # Repeat the unlabelled sets so the mix matches `unlabelled_fraction` in expectation (split evenly between
    # the kinds asked for).
    want = labelled * cfg.unlabelled_fraction / max(1e-6, 1 - cfg.unlabelled_fraction) / len(unlabelled)
    for data in unlabelled:
        repeats = max(1, round(want / len(data)))
        parts += [_reseeded(data, k) for k in range(repeats)]
        log.info("sht: %d labelled pairs, %d unlabelled %s x%d (gamma1 = 0)", labelled, len(data), data.kind, repeats)
    return ConcatDataset(parts)


def train_sht(cfg: TrainConfig, rt: Runtime) -> Path:
    """Eq. 9-10: DHLN + FPTN on labelled pairs (gamma1 = 1) and unlabelled video or image pairs (gamma1 = 0)."""
    train, val = _records(cfg)
    dhln = _wrap(init_dhln(cfg), rt)
    dhln_cfg = unwrap(dhln).cfg
    fptn = _place(_fptn(cfg, dhln_cfg.face_size), rt)
    parts = FPTNParts.wrap(fptn, rt)
    vgg = _vgg(cfg, rt)
    dataset = _sht_pairs(cfg, train, dhln_cfg)
    # DHLN and FPTN keep their own optimisers and rates: FPTN goes on as the fptn stage left it (its optimiser
    # state is taken from that run's state.pt when it lies beside --fptn-init), at --fptn-lr.
    opt = torch.optim.AdamW(dhln.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    opt_g, opt_d = parts.optimizers(cfg.fptn_lr)
    fptn_state = Path(cfg.fptn_init).parent / "state.pt" if cfg.fptn_init else None
    if fptn_state is not None and fptn_state.exists() and not cfg.resume:
        saved = torch.load(fptn_state, map_location="cpu", weights_only=True)["optimizers"]
        opt_g.load_state_dict(saved["g"])
        opt_d.load_state_dict(saved["d"])
        log.info("sht: FPTN optimiser state from %s", fptn_state)
    scale = cfg.fptn_lr / cfg.lr
    loop = Loop(cfg, rt, {"dhln": dhln, "fptn": fptn}, {"opt": opt, "g": opt_g, "d": opt_d},
                lr_scale={"g": scale, "d": scale}, evaluate=dhln, val=val)
    w, precision = cfg.loss_weights_config(), loop.precision
    batches = loop.batches(dataset)
    for step in loop.steps():
        batch = _to(next(batches), rt.device)
        a, b, labelled = batch["a"], batch["b"], batch["labelled"]
        if cfg.freeze_bn:   # re-applied each step: evaluation puts the model back in train mode
            freeze_batchnorm(dhln)
        with precision.autocast():
            # Both views in one forward pass (one DDP forward per backward).
            out = dhln(torch.cat([a["input"], b["input"]]))
            out_a, out_b = _halves(out)
            terms_a = losses.dhln_terms(out_a.heatmaps, out_a.face, a["heatmaps"], a["face"], w, labelled)
            terms_b = losses.dhln_terms(out_b.heatmaps, out_b.face, b["heatmaps"], b["face"], w, labelled)
            # Transfer both ways through DHLN's own predictions (a -> b and b -> a in one FPTN batch): the
            # gradient reaches DHLN through the hallucinated condition face and both heatmap sets (Eq. 9).
            hm_a, hm_b = out_a.heatmaps[-1], out_b.heatmaps[-1]
            cond_face, cond_hm, target_hm = torch.cat([out_a.face, out_b.face]), out.heatmaps[-1], torch.cat([hm_b, hm_a])
            target_face = torch.cat([b["face"], a["face"]])
            transfer, fake, logged = _generator_loss(parts, vgg, cond_face, cond_hm, target_hm, target_face, w)
            terms = {k: terms_a[k] + terms_b[k] for k in terms_a}
            # Eq. 9 sums the two directions; the batch mean over both is half that sum.
            terms.update({f"transfer_{k}": 2 * v for k, v in transfer.items()})
            loss = sum(terms.values())
        shares = losses.gradient_shares(list(dhln.parameters()), terms) if loop.logging(step) else {}
        opt.zero_grad(set_to_none=True)
        opt_g.zero_grad(set_to_none=True)
        precision.backward(loss)
        precision.step(opt, clip=list(dhln.parameters()))
        precision.step(opt_g)
        with precision.autocast():   # (the sum of the two directions' losses, as before: hence 2x the mean)
            loss_d = 2 * _discriminator_loss(parts, cond_face.detach(), target_hm.detach(), target_face, fake)
        opt_d.zero_grad(set_to_none=True)
        precision.backward(loss_d)
        precision.step(opt_d)
        precision.update()
        if loop.logging(step):
            loop.log(step, {"loss": loss.detach(), "loss_d": loss_d.detach(),
                            **{k: v.detach() for k, v in terms.items()}, **logged,
                            **{f"grad_share_{k}": v for k, v in shares.items()}, "labelled": labelled.mean()})
    return Path(cfg.out) / "last.safetensors"


def _halves(out: DHLNOutput) -> tuple[DHLNOutput, DHLNOutput]:
    """Split a forward pass over (view a, view b) back into the two views."""
    heatmaps = [h.chunk(2) for h in out.heatmaps]
    face_a, face_b = out.face.chunk(2)
    return DHLNOutput([h[0] for h in heatmaps], face_a), DHLNOutput([h[1] for h in heatmaps], face_b)


STAGES = {"dhln": train_dhln, "fptn": train_fptn, "sht": train_sht}
