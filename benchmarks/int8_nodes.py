"""Which parts of a DHLN lose accuracy under int8: quantise with one group of nodes kept in float at a time.

    python -m benchmarks.int8_nodes --weights tracker/assets/shtrack-cpu-rt.safetensors [--widths 16 24 32]

Each variant is the int8 export (sht_model.export.quantize_onnx_int8, calibrated on the same 200 training-split
faces) with one group of node-name prefixes kept in float, or with another activation calibration; every variant
is scored on the held-out 300W faces at fixed widths (the ladder's protocol, clean) beside the float ONNX graph.
`--keep` adds variants of your own (a comma-separated prefix list each). Accuracy only: time the chosen file with
`python -m benchmarks.ladder --timing-only` on a quiet machine. Writes benchmarks/results/int8_nodes.json.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from sht_model.export import export_onnx, quantize_onnx_int8
from sht_model.weights import load_model
from train.data import calibration_inputs, split_records
from train.readers import read_300w

from .common import console, save, table
from .ladder import accuracy


def groups(stacks: int) -> dict[str, tuple[str, ...]]:
    """Node-name prefixes of the exported graph (torch module paths), one group per part of the method."""
    last = f"/stacks.{stacks - 1}"
    every = [f"/stacks.{i}" for i in range(stacks)]
    return {
        "stems": ("/stem_p", "/stem_q"),
        "last heatmap head": (f"{last}/head",),
        "heatmap heads": tuple(f"{s}/head" for s in every),
        "FUBlock1 (fuse_q)": tuple(f"{s}/fuse_q" for s in every),
        "FUBlock2 (fuse_p)": tuple(f"{s}/fuse_p" for s in every),
        "SR modules": tuple(f"{s}/sr_module" for s in every),
        "hourglasses": tuple(f"{s}/hourglass" for s in every),
        "stack features + remaps": tuple(p for s in every for p in (f"{s}/features", f"{s}/remap", f"{s}/Add")),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.int8_nodes", description=__doc__.split("\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    repo = Path(__file__).resolve().parents[1]
    p.add_argument("--weights", type=Path, required=True, help="a .safetensors DHLN")
    p.add_argument("--data", type=Path, default=repo.parent / "shared" / "data" / "300w_train")
    p.add_argument("--widths", type=float, nargs="+", default=[16.0, 24.0, 32.0])
    p.add_argument("--keep", nargs="*", default=[], metavar="PREFIX[,PREFIX...]",
                   help="more variants: node-name prefixes to keep in float together")
    p.add_argument("--no-groups", action="store_true", help="only the baselines and --keep variants")
    p.add_argument("--methods", nargs="+", default=["minmax", "percentile", "entropy"],
                   choices=["minmax", "percentile", "entropy"], help="calibration baselines (each all-int8)")
    p.add_argument("--name", default="int8_nodes")
    args = p.parse_args(argv)

    model = load_model(args.weights)
    train, _ = split_records(read_300w(args.data))
    calibration = list(calibration_inputs(train, model.cfg, 200))
    variants: dict[str, dict] = {f"int8 {m}": {"method": m} for m in args.methods}
    if not args.no_groups:
        variants |= {f"float: {g}": {"keep_float": prefixes} for g, prefixes in groups(model.cfg.num_stacks).items()}
    variants |= {f"float: {k}": {"keep_float": tuple(k.split(","))} for k in args.keep}
    with tempfile.TemporaryDirectory() as tmp:
        fp32 = export_onnx(model, Path(tmp) / "float.onnx", with_face=False)
        paths = {"float": fp32}
        for i, (name, kw) in enumerate(variants.items()):
            kw = {"keep_float": (), **kw}
            paths[name] = quantize_onnx_int8(fp32, Path(tmp) / f"v{i}.onnx", calibration, **kw)
            console.print(f"quantised: {name}")
        scores = accuracy(paths, args.data, args.widths)
    result = {"weights": str(args.weights), "widths": args.widths,
              "variants": {k: {"keep_float": list(v.get("keep_float", ())), "method": v.get("method", "minmax")}
                           for k, v in variants.items()}, **scores}
    save(args.name, result)
    base = result["models"]["float"]["clean"]
    rows = [[name, *(f"{r['clean'][w]['nme']:.2%} ({r['clean'][w]['nme'] - base[w]['nme']:+.2%}) / "
                     f"{r['degraded'][w]['nme']:.2%}" for w in base)] for name, r in result["models"].items()]
    console.print(table(f"int8 variants: held-out 300W ({result['faces']} faces), NME clean (against float) / "
                        "degraded", ["variant", *base], rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
