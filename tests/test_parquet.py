"""--parquet and `shtrack convert`: the CSV's rows in Parquet, readable part by part while a run goes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.conftest import astronaut_scene, write_video
from tracker.cli import main

pq = pytest.importorskip("pyarrow.parquet", reason="the [parquet] extra (pyarrow)")


def test_parquet_holds_the_csv_rows_and_converts_back_to_the_same_bytes(tmp_path, tiny_weights):
    clip = write_video(tmp_path / "c.mp4", astronaut_scene(12, lambda i: [(90, 120), (230, 120)], 40))
    csv_path, parquet = tmp_path / "o.csv", tmp_path / "o.parquet"
    assert main(["--source", str(clip), "--csv", str(csv_path), "--parquet", str(parquet),
                 "--weights", str(tiny_weights), "--quiet"]) == 0
    table = pq.read_table(parquet)
    lines = csv_path.read_text().splitlines()
    assert table.num_rows == len(lines) - 1 and table.schema.names == lines[0].split(",")
    assert str(table.schema.field("x_0").type) == "float"          # float32 landmarks
    assert main(["convert", str(parquet), str(tmp_path / "back.csv")]) == 0
    assert (tmp_path / "back.csv").read_bytes() == csv_path.read_bytes()
    assert main(["convert", str(csv_path), str(tmp_path / "again.parquet")]) == 0
    assert main(["convert", str(tmp_path / "again.parquet"), str(tmp_path / "again.csv")]) == 0
    assert (tmp_path / "again.csv").read_bytes() == csv_path.read_bytes()
    assert not (tmp_path / "o.parquet.parts").exists()


def test_a_killed_run_leaves_readable_row_groups_that_convert_joins(tmp_path):
    from tracker.sinks import ParquetSink
    from tracker.types import Faces, Frame, FrameResult

    sink = ParquetSink(tmp_path / "o.parquet", frames_per_group=2)
    sink.__enter__()
    for i in range(1, 6):
        faces = Faces(np.full((1, 68, 2), i, np.float32), np.ones((1, 68)), np.array([[0, 0, 9, 9]]),
                      np.array([0]), np.array([True]), model=np.array(["cpu-rt"]))
        sink.append(FrameResult(Frame(i, i / 25, np.zeros((4, 4, 3), np.uint8)), faces))
    # No __exit__: the process was killed. The two finished row groups are whole files.
    parts = sorted((tmp_path / "o.parquet.parts").glob("part-*.parquet"))
    assert len(parts) == 2 and [pq.read_table(p).num_rows for p in parts] == [2, 2]
    assert main(["convert", str(tmp_path / "o.parquet.parts"), str(tmp_path / "saved.parquet")]) == 0
    assert pq.read_table(tmp_path / "saved.parquet")["frame"].to_pylist() == [1, 2, 3, 4]
    sink._release()


def test_convert_refuses_foreign_files_and_its_own_input(tmp_path, capsys):
    bad = tmp_path / "x.csv"
    bad.write_text("a,b\n1,2\n")
    assert main(["convert", str(bad), str(tmp_path / "x.parquet")]) == 2
    assert "not an shtrack CSV" in capsys.readouterr().err and not (tmp_path / "x.parquet").exists()
    junk = tmp_path / "j.parquet"
    junk.write_bytes(b"PAR1 not really")
    assert main(["convert", str(junk), str(tmp_path / "j.csv")]) == 2
    assert "Traceback" not in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["convert", str(junk), str(junk)])
