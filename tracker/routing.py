"""Per-face routing over a ladder of landmark models by face size.

A 16-px face carries about 16x16 pixels of information: a model whose input is near that size (cpu-small,
32x32) reads it at a quarter of the cost of one that resamples it to 64x64 (cpu-rt), and the faces a frame holds
in a crowd are mostly that small. Each face goes to the cheapest rung that is accurate at its width (the
landmark box side in source pixels, what the crop is made from); each rung runs once per frame on all of its
faces (one batched call per model). A face keeps its rung until its width passes the boundary by the
hysteresis margin, so a face near a boundary does not flip between models every frame.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Rung:
    name: str                 # the weight tag (or file name) the CSV's `model` column shows
    backend: object           # tracker.backends.Backend
    below: float = math.inf   # faces narrower than this (source px) use this rung; the last rung takes the rest


class Ladder:
    """Rungs in order of face size. `choose(widths, current)` -> each face's rung index."""

    def __init__(self, rungs: list[Rung], hysteresis: float = 0.1):
        if not rungs:
            raise ValueError("a ladder needs at least one model")
        bounds = [r.below for r in rungs]
        if bounds[-1] != math.inf or any(not a < b for a, b in zip(bounds, bounds[1:])):
            raise ValueError(f"ladder bounds must rise and end open (inf), not {bounds}")
        if not 0 <= hysteresis < 0.5:
            raise ValueError(f"hysteresis must be in [0, 0.5), not {hysteresis}")
        faces = {r.backend.faces for r in rungs}
        if len(faces) > 1:
            raise ValueError("every model of a ladder must be loaded with or without hallucinated faces alike")
        self.rungs, self.hysteresis = list(rungs), hysteresis
        self.bounds = np.array(bounds[:-1], np.float64)

    @classmethod
    def single(cls, backend, name: str | None = None) -> "Ladder":
        return cls([Rung(name or getattr(backend, "tag", None) or backend.cfg.name, backend)])

    @property
    def names(self) -> list[str]:
        return [r.name for r in self.rungs]

    def __len__(self) -> int:
        return len(self.rungs)

    def choose(self, widths: np.ndarray, current: np.ndarray) -> np.ndarray:
        """widths (n,) face widths in px; current (n,) each face's rung so far, -1 for a new face -> (n,) rungs.
        A new face takes the rung its width falls in; a known one moves up only once its width is above the
        boundary by the hysteresis margin, down only once it is below by as much (one step per boundary passed)."""
        widths = np.asarray(widths, np.float64)
        fresh = np.searchsorted(self.bounds, widths, side="right")
        out = np.where(np.asarray(current) < 0, fresh, current).astype(np.int64)
        h = self.hysteresis
        for i in range(len(out)):
            while out[i] < len(self.bounds) and widths[i] >= self.bounds[out[i]] * (1 + h):
                out[i] += 1
            while out[i] > 0 and widths[i] < self.bounds[out[i] - 1] * (1 - h):
                out[i] -= 1
        return out
