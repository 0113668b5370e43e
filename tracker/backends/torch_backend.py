from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from sht_model.weights import load_model


class TorchBackend:
    def __init__(self, weights: Path, device: str = "cpu", threads: int = 0):
        if threads:
            torch.set_num_threads(threads)
        if device.startswith("cuda") and not torch.cuda.is_available():
            raise RuntimeError("--device cuda asked for, but no CUDA device is visible")
        self.device = torch.device(device)
        self.model = load_model(weights).to(self.device).eval()
        self.cfg = self.model.cfg
        self.name = f"torch-{self.device.type}"

    @torch.inference_mode()
    def infer(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        out = self.model(torch.from_numpy(batch).to(self.device))
        return out.heatmaps[-1].float().cpu().numpy(), out.face.float().cpu().numpy()
