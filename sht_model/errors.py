"""Errors shared by the model package and the tracker (no torch here: the ONNX Runtime path imports it)."""


class WeightsError(ValueError):
    """A weights file that cannot be used; the message names the file and the reason."""


class BackendError(RuntimeError):
    """A runtime that cannot run here (no CUDA for TensorRT, a missing extra); the message says what to do."""
