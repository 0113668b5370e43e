"""int8 export calibrated on training faces: `shtrack export --int8 OUT --calibration-data DIR` lands here.

The calibration inputs are training-style samples (augmented, degraded to 12-64 px faces) of the data set's
training split, so the int8 ranges fit what the tracker feeds the model; building them needs this package's
data pipeline, which the installed tracker does not carry.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from .data import calibration_inputs, split_records
from .readers import read_300w


def export_int8(model, out: Path, calibration_data: Path, samples: int = 200) -> Path:
    """Write `out`, an int8 QDQ ONNX graph (heatmaps only) of `model`. Raises DatasetError (bad data folder) or
    ValueError (an image that cannot be decoded)."""
    from sht_model.export import export_onnx, quantize_onnx_int8

    train, _ = split_records(read_300w(calibration_data))
    inputs = list(calibration_inputs(train, model.cfg, samples))
    with tempfile.TemporaryDirectory() as tmp:
        fp32 = export_onnx(model, Path(tmp) / "fp32.onnx", with_face=False)
        return quantize_onnx_int8(fp32, out, inputs)


def main(argv: list[str] | None = None) -> int:
    """`python -m train.quantize --weights W --out OUT --calibration-data DIR`: what `shtrack export --int8` runs."""
    import argparse
    import sys

    from sht_model.errors import WeightsError
    from sht_model.weights import load_model

    p = argparse.ArgumentParser(prog="python -m train.quantize", description=__doc__.split("\n")[0])
    p.add_argument("--weights", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--calibration-data", type=Path, required=True)
    p.add_argument("--samples", type=int, default=200, choices=range(1, 100_001), metavar="N")
    args = p.parse_args(argv)
    try:
        print(export_int8(load_model(args.weights), args.out, args.calibration_data, args.samples))
    except (WeightsError, ValueError, OSError) as exc:   # DatasetError is a ValueError
        print(f"shtrack: error: {str(exc).splitlines()[0]}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    import sys

    sys.exit(main())
