"""CSV against Parquet for the same rows: file size and pandas read time, measured, then per row and extrapolated.

    python -m benchmarks.parquet_size RUN.csv [--repeats 5]

Converts RUN.csv with `shtrack convert` (tracker/convert.py), reads each file with pandas `--repeats` times
(median), and scales the per-row figures to one hour and one camera-day at 25 fps for the measured faces per
frame (an extrapolation: stated as such). Writes benchmarks/results/parquet_size.json.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from .common import console, save, table


def main(argv: list[str] | None = None) -> int:
    import pandas as pd

    from tracker.convert import csv_to_parquet

    p = argparse.ArgumentParser(prog="python -m benchmarks.parquet_size", description=__doc__.split("\n")[0])
    p.add_argument("csv", type=Path)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--fps", type=float, default=25.0)
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        parquet = Path(tmp) / "run.parquet"
        rows = csv_to_parquet(args.csv, parquet)
        sizes = {"csv": args.csv.stat().st_size, "parquet": parquet.stat().st_size}
        reads = {"csv": [], "parquet": []}
        for _ in range(args.repeats):
            for kind, reader, path in (("csv", pd.read_csv, args.csv), ("parquet", pd.read_parquet, parquet)):
                t = time.perf_counter()
                frame = reader(path)
                reads[kind].append(time.perf_counter() - t)
        frames = int(frame["frame"].nunique())
    per_frame = rows / max(frames, 1)
    read = {k: float(np.median(v)) for k, v in reads.items()}
    result = {"csv": str(args.csv), "rows": rows, "frames": frames, "rows_per_frame": per_frame, "bytes": sizes,
              "read_s": read, "size_ratio": sizes["csv"] / sizes["parquet"], "read_ratio": read["csv"] / read["parquet"],
              "per_row_bytes": {k: v / rows for k, v in sizes.items()}}
    for label, seconds in (("one hour", 3600), ("one camera-day", 86400)):
        n = seconds * args.fps * per_frame
        result[f"extrapolated_{label.replace(' ', '_').replace('-', '_')}"] = {
            "rows": n, **{f"{k}_gb": n * b / 1e9 for k, b in result["per_row_bytes"].items()},
            **{f"{k}_read_s": n * read[k] / rows for k in read}}
    save("parquet_size", result)
    rows_out = [[k, f"{sizes[k] / 1e6:.2f} MB", f"{read[k] * 1000:.0f} ms",
                 f"{result['extrapolated_one_hour'][f'{k}_gb']:.2f} GB",
                 f"{result['extrapolated_one_camera_day'][f'{k}_gb']:.1f} GB"] for k in sizes]
    console.print(table(f"{rows} rows ({frames} frames, {per_frame:.2f} faces/frame): size ratio "
                        f"{result['size_ratio']:.2f}x, pandas read ratio {result['read_ratio']:.2f}x",
                        ["format", "size", "pandas read", "one hour (extrap.)", "camera-day (extrap.)"], rows_out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
