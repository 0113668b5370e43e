from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from sht_model.dhln import DHLNInference
from sht_model.weights import load_model


class TorchBackend:
    def __init__(self, weights: Path, device: str = "cpu", threads: int = 0, faces: bool = False):
        if threads:
            torch.set_num_threads(threads)
        if device.startswith("cuda") and not torch.cuda.is_available():
            from sht_model.errors import BackendError

            raise BackendError("--device cuda asked for, but no CUDA device is visible")
        self.device = torch.device(device)
        self.model = load_model(weights).to(self.device).eval()
        self.inference = DHLNInference(self.model, with_face=faces)
        self.faces = faces
        self.cfg = self.model.cfg
        self.name = f"torch-{self.device.type}"

    @torch.inference_mode()
    def infer(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        out = self.inference(torch.from_numpy(batch).to(self.device))
        if not self.faces:
            return out.float().cpu().numpy(), None
        return out[0].float().cpu().numpy(), out[1].float().cpu().numpy()
