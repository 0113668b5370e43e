"""`shtrack convert IN OUT`: landmark tables between CSV and Parquet (the `[parquet]` extra), by file extension.

    shtrack convert run.csv run.parquet
    shtrack convert run.parquet run.csv           # the same bytes as the CSV the run would have written
    shtrack convert run.parquet.parts run.parquet # the finished row groups of a run that was killed

Both directions stream (a block of rows at a time), so a file of any length converts in constant memory.
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
from pathlib import Path

import numpy as np

from .sinks import CSV_COLUMNS, NUMBERS, PARQUET_OPTIONS, join_parquet, parquet_schema

_FLOATS = NUMBERS                        # pose, x_*, y_*, box: written with 3 decimals


def csv_to_parquet(src: Path, out: Path) -> int:
    import pyarrow as pa
    import pyarrow.csv as pcsv
    import pyarrow.parquet as pq

    with open(src, newline="") as f:
        header = next(csv.reader(f), [])
    if header[:len(CSV_COLUMNS)] != CSV_COLUMNS:
        raise ValueError(f"{src}: not an shtrack CSV (its header is not this version's columns)")
    schema = parquet_schema(file_column="file" in header)
    reader = pcsv.open_csv(src, convert_options=pcsv.ConvertOptions(
        column_types={f.name: f.type for f in schema}, strings_can_be_null=False, quoted_strings_can_be_null=False))
    rows = 0
    with pq.ParquetWriter(out, schema, **PARQUET_OPTIONS) as writer:
        for batch in reader:
            table = pa.Table.from_batches([batch]).select(schema.names).cast(schema)
            writer.write_table(table)
            rows += table.num_rows
    return rows


def parquet_to_csv(src: Path, out: Path) -> int:
    import pyarrow.parquet as pq

    f = pq.ParquetFile(src)
    names = f.schema_arrow.names
    rows = 0
    with open(out, "w", newline="") as dst:
        writer = csv.writer(dst)
        writer.writerow(names)
        for g in range(f.num_row_groups):
            table = f.read_row_group(g)
            cols = {n: table[n].to_numpy(zero_copy_only=False) for n in names}
            coords = np.stack([np.asarray(cols[n], np.float64) for n in CSV_COLUMNS[5:5 + _FLOATS]], 1)
            for k in range(table.num_rows):
                face = int(cols["face_id"][k])
                row = [int(cols["frame"][k]), face, f"{cols['timestamp'][k]:.3f}", f"{cols['confidence'][k]:.3f}",
                       int(cols["success"][k])]
                row += ["" if v != v else f"{v:.3f}" for v in coords[k]]
                row += [cols["model"][k] or ""] + ([cols["file"][k]] if "file" in cols else [])
                writer.writerow(row)
            rows += table.num_rows
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="shtrack convert", description=__doc__.split("\n")[0],
                                epilog="\n".join(__doc__.split("\n")[1:]), formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("input", type=Path, help="a .csv, a .parquet, or a run's .parquet.parts folder")
    p.add_argument("output", type=Path, help="a .parquet or a .csv (never the input)")
    args = p.parse_args(argv)
    src, out = args.input, args.output
    if not src.exists():
        p.error(f"{src}: no such file or directory")
    if out.exists() and os.path.realpath(out) == os.path.realpath(src):
        p.error(f"{out}: the output would replace the input")
    if out.is_symlink() or (out.exists() and not out.is_file()):
        p.error(f"{out}: not a regular file to write (a symlink, folder, device or FIFO is never replaced)")
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        print("shtrack: error: convert needs pyarrow: pip install 'shtrack[parquet]'", file=sys.stderr)
        return 2
    tmp = out.with_name(out.name + ".partial")
    try:
        if src.is_dir() and out.suffix == ".parquet":
            rows = join_parquet(sorted(src.glob("part-*.parquet")), tmp)
        elif src.suffix == ".csv" and out.suffix == ".parquet":
            rows = csv_to_parquet(src, tmp)
        elif src.suffix == ".parquet" and out.suffix == ".csv":
            rows = parquet_to_csv(src, tmp)
        else:
            p.error("convert goes from .csv to .parquet, from .parquet to .csv, or from a .parquet.parts folder "
                    "to .parquet")
        os.replace(tmp, out)
    except (OSError, ValueError) as exc:
        if tmp.exists():
            tmp.unlink()
        print(f"shtrack: error: {str(exc).splitlines()[0]}", file=sys.stderr)
        return 2
    except Exception as exc:  # noqa: BLE001 -- pyarrow's ArrowInvalid and friends: a file that is not ours
        if tmp.exists():
            tmp.unlink()
        print(f"shtrack: error: {src}: cannot read it as an shtrack table ({str(exc).splitlines()[0][:200]})",
              file=sys.stderr)
        return 2
    print(f"{out}: {rows} rows")
    return 0


if __name__ == "__main__":
    sys.exit(main())
