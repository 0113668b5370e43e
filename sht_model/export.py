"""Export DHLN for inference runtimes.

- ONNX (dynamic batch) for ONNX Runtime on CPU. `torch.onnx.export` needs the `onnx` package (and
  protobuf >= 6), which is why `onnx` lives in the base install and MediaPipe (protobuf < 5) does not:
  see docs/install.md.
- int8 ONNX (ONNX Runtime static quantisation of the heatmaps-only graph, KEEP_FLOAT's nodes in float): cpu-rt's
  is 2.0x faster than float on a 2-core AVX2 CPU and within 0.04 NME points of it (docs/results.md).
- TensorRT via torch-tensorrt (FP16), from the optional `[tensorrt]` extra; needs CUDA.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import torch

from .dhln import DHLN, DHLNInference

INPUT_NAME = "image"
OUTPUT_NAMES = ("heatmaps", "face")
# Node-name prefixes the int8 export keeps in float: the output side of the pose stem's last block (its skip and
# last convs, their sum and its ReLU), whose output is the features every stack starts from. Quantised, the two
# addends, each on its own uint8 scale, cost cpu-rt 0.29 of the 0.32 NME points int8 lost at 16 px; every other
# part of the graph (heads, FUBlocks, SR modules, hourglasses) costs at most 0.01
# (`python -m benchmarks.int8_nodes`, docs/results.md). Kept in float, the export is ~2.0x faster than
# float instead of ~2.6x.
KEEP_FLOAT: tuple[str, ...] = ("/stem_q/stem_q.4/skip", "/stem_q/stem_q.4/body/body.6", "/stem_q/stem_q.4/Add",
                               "/stem_q/stem_q.4/Relu")
CALIBRATION_METHODS = {"minmax": "MinMax", "percentile": "Percentile", "entropy": "Entropy"}   # onnxruntime's names


def export_onnx(model: DHLN, path: str | Path, opset: int = 17, with_face: bool = True,
                source_sha256: str | None = None) -> Path:
    """Write `path` (ONNX, dynamic batch). The DHLN config travels in the model's metadata_props.

    with_face=False: heatmaps only (the tracker's default graph, 13% cheaper for cpu-rt under ONNX Runtime).
    source_sha256: the weights file it came from (metadata `shtrack_source_sha256`): a `.onnx` beside a
    `.safetensors` stands in for it only while the hashes agree (tracker.backends.onnx_backend.onnx_for).
    """
    import onnx

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    cfg = model.cfg
    wrapper = DHLNInference(model, with_face).eval()
    outputs = list(OUTPUT_NAMES if with_face else OUTPUT_NAMES[:1])
    dummy = torch.zeros(1, 3, cfg.input_size, cfg.input_size)
    tmp = path.with_suffix(".partial.onnx")
    # The TorchScript-based exporter: stable for plain conv nets and gives dynamic_axes directly.
    torch.onnx.export(
        wrapper, (dummy,), str(tmp), dynamo=False, opset_version=opset,
        input_names=[INPUT_NAME], output_names=outputs,
        dynamic_axes={name: {0: "batch"} for name in [INPUT_NAME, *outputs]},
    )
    proto = onnx.load(str(tmp))
    entry = proto.metadata_props.add()
    entry.key, entry.value = "shtrack_config", cfg.to_json()
    if source_sha256:
        entry = proto.metadata_props.add()
        entry.key, entry.value = "shtrack_source_sha256", source_sha256
    onnx.save(proto, str(path))
    tmp.unlink()
    return path


def quantize_onnx_int8(src: str | Path, dst: str | Path, calibration: Iterable[np.ndarray],
                       reduce_range: bool = True, keep_float: Iterable[str] = KEEP_FLOAT,
                       method: str = "minmax") -> Path:
    """Static int8 quantisation of an exported model with ONNX Runtime.

    Weights int8 per output channel, activations uint8 with MinMax ranges from `calibration` (input batches,
    normalised like the tracker's crops: training-split faces, never held-out ones), QDQ format. The DHLN
    config is carried over; metadata `shtrack_precision` says int8.
    reduce_range: 7-bit weights. On CPUs without VNNI, ONNX Runtime's uint8 x int8 kernels sum pairs of
    products in int16 and can saturate with full 8-bit weights (the likely cause of the +0.5 NME points an
    AVX2-only machine measured); 7 bits cannot. Measured here (VNNI) it costs 0.0-0.1 points (MODEL_CARD.md).
    """
    import onnx
    from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType,
                                          quant_pre_process, quantize_static)

    src, dst = Path(src).resolve(), Path(dst).resolve()
    config = onnx_config_json(src)
    # Drawn here, before the chdir below: a lazy source reading relative paths (a 300W folder given as
    # ../shared/data/...) would otherwise look for its images inside the scratch directory. 200 crops ~ 10 MB.
    batches = iter([np.ascontiguousarray(b, np.float32) for b in calibration])

    class Reader(CalibrationDataReader):
        def get_next(self):
            batch = next(batches, None)
            return None if batch is None else {INPUT_NAME: batch}

    # The quantiser writes scratch files into the working directory: give it a private one.
    with tempfile.TemporaryDirectory() as tmp, contextlib.chdir(tmp):
        prepared, quantized = Path(tmp) / "prepared.onnx", Path(tmp) / "int8.onnx"
        quant_pre_process(str(src), str(prepared), skip_symbolic_shape=True)
        prefixes = tuple(keep_float)
        excluded = [n.name for n in onnx.load(str(prepared)).graph.node if n.name.startswith(prefixes)] \
            if prefixes else []
        quantize_static(str(prepared), str(quantized), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, reduce_range=reduce_range,
                        nodes_to_exclude=excluded, calibrate_method=getattr(CalibrationMethod, CALIBRATION_METHODS[method]))
        proto = onnx.load(str(quantized))
    del proto.metadata_props[:]
    for key, value in (("shtrack_config", config), ("shtrack_precision", "int8")):
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    dst.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(proto, str(dst))
    return dst


def onnx_config_json(path: str | Path) -> str:
    """Read the DHLN config back from an exported model (via onnxruntime, no `onnx` import needed)."""
    import onnxruntime as ort

    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    meta = sess.get_modelmeta().custom_metadata_map
    return meta["shtrack_config"]


def export_tensorrt(model: DHLN, path: str | Path, batch_sizes: tuple[int, int, int] = (1, 1, 8),
                    with_face: bool = True) -> Path:
    """Compile with torch-tensorrt (FP16) and save a TorchScript module to `path`. Needs CUDA."""
    if not torch.cuda.is_available():
        raise RuntimeError("TensorRT export needs a CUDA device; none is visible")
    try:
        import torch_tensorrt
    except ImportError:
        raise RuntimeError("torch-tensorrt is not installed: pip install 'shtrack[tensorrt]'") from None
    cfg = model.cfg
    wrapper = DHLNInference(model, with_face).eval().cuda()
    lo, opt, hi = batch_sizes
    side = cfg.input_size
    spec = torch_tensorrt.Input(min_shape=(lo, 3, side, side), opt_shape=(opt, 3, side, side),
                                max_shape=(hi, 3, side, side), dtype=torch.float32)
    trt_module = torch_tensorrt.compile(wrapper, ir="ts", inputs=[spec], enabled_precisions={torch.float16})
    path = Path(path)
    torch.jit.save(trt_module, str(path), _extra_files={"shtrack_config.json": cfg.to_json()})
    return path


def tensorrt_config_json(path: str | Path) -> str:
    extra = {"shtrack_config.json": ""}
    torch.jit.load(str(path), map_location="cuda", _extra_files=extra)
    value = extra["shtrack_config.json"]
    return value.decode() if isinstance(value, bytes) else value
