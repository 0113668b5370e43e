"""One file over several processes: `shtrack --source long.mp4 --csv out.csv --workers N`.

The file is cut into N time segments of consecutive frames. Worker k tracks its segment from a full scan,
starting `overlap` frames before it (a warm-up: the tracks, their crops and the smoother settle on the faces
present) and going on `lookahead` frames after it (so the fixed-lag smoother has the future it would have had
in one run); only the segment's own frames are kept. A stitcher then joins the tracks that continue across each
boundary: on the overlap frames, which both neighbours tracked, a face of the later worker takes the id of the
face of the earlier worker whose landmark boxes it overlaps best (mean IoU over the frames both have it, at least
`JOIN_IOU`, one-to-one by the Hungarian method); a face with no partner is a new face with a new id. Every frame is
written exactly once, in order. A shot change in the overlap ends the earlier worker's tracks as one run would,
and the later worker's tracks after it start there: they share no frame before the cut, so none is joined across
it.

Each worker seeks to the keyframe before its warm-up (tracker.sources.open_video: frame numbers from the packets'
timestamps, which it demuxes but does not decode) and drops the few frames between that keyframe and its start;
docs/how-it-works.md gives the scaling model. `--workers` runs local processes, `--workers N --ray ADDRESS` the same jobs as Ray tasks (a task
whose worker dies is retried), with the same output; `--resume` redoes only the segments not finished.
"""

from __future__ import annotations

import csv
import logging
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path

import numpy as np

log = logging.getLogger("shtrack")

ID_STRIDE = 1_000_000      # worker k's ids start at k * ID_STRIDE until the stitcher renumbers them
JOIN_IOU = 0.5             # mean landmark-box IoU over the overlap that makes two tracks one face


@dataclass(frozen=True)
class Segment:
    start: int                # first frame the segment writes (1-based, inclusive)
    end: int                  # last frame it writes (inclusive)
    track_start: int          # first frame its worker tracks (start - overlap)
    track_end: int            # last frame its worker tracks (end + lookahead)


def plan(total: int, workers: int, overlap: int, lookahead: int) -> list[Segment]:
    """N contiguous segments covering frames 1..total, each with its warm-up and look-ahead."""
    if total < 1 or workers < 1:
        raise ValueError(f"cannot cut {total} frames into {workers} segments")
    workers = min(workers, total)
    bounds = np.linspace(0, total, workers + 1).round().astype(int)
    return [Segment(int(a) + 1, int(b), max(1, int(a) + 1 - overlap), min(total, int(b) + lookahead))
            for a, b in zip(bounds[:-1], bounds[1:])]


def _track_segment(job: dict) -> str:
    """A worker: track one segment into its own CSV, then mark it done (`<csv>.done`: --resume skips it; a CSV
    without its mark is redone). `job` holds only plain values (spawned processes, Ray tasks)."""
    from .backends import load_backend, load_ladder
    from .run import Outputs, Span, run_source

    if job["ladder"]:
        backend = load_ladder(job["kind"], "cpu", job["threads"])
    else:
        backend = load_backend(job["weights"], job["kind"], "cpu", job["threads"])
    code = run_source(job["source"], backend, job["options"],
                      Outputs(csv=Path(job["csv"]), quiet=True, summary=False), job["threads"],
                      Span(start=job["track_start"], end=job["track_end"]), first_id=job["first_id"])
    if code == 0:
        Path(job["csv"] + ".done").write_text(f"frames {job['track_start']}-{job['track_end']}\n")
    return job["csv"]


def _run_jobs(jobs: list[dict], ray_address: str | None, max_retries: int = 3) -> None:
    """Every job on local processes, or as Ray tasks (a task whose worker dies is retried)."""
    if not jobs:
        return
    if ray_address is None:
        with ProcessPoolExecutor(len(jobs), mp_context=get_context("spawn")) as pool:
            list(pool.map(_track_segment, jobs))
        return
    try:
        import ray
    except ImportError:
        from .sources import SourceError

        raise SourceError("--ray needs Ray: pip install 'shtrack[cluster]'") from None
    if not ray.is_initialized():
        if ray_address == "local":
            ray.init(num_cpus=min(len(jobs), os.cpu_count() or 1), include_dashboard=False, log_to_driver=False)
        else:
            ray.init(address=ray_address, log_to_driver=False)
    task = ray.remote(max_retries=max_retries, retry_exceptions=False)(_track_segment)
    ray.get([task.remote(job) for job in jobs])


def run_segments(source: str, out_csv: Path, workers: int, options, weights: Path | None, ladder: bool,
                 kind: str = "auto", threads: int = 0, overlap: int | None = None, ray_address: str | None = None,
                 resume: bool = False) -> int:
    """Track `source` in `workers` segments (local processes, or Ray tasks with `ray_address`) into `out_csv`
    -> 0. The segments' own CSVs are kept in `<out_csv>.segments/` until the stitched file is in place (a failed
    run leaves them there, and `resume` redoes only the segments not marked done)."""
    from .run import frame_count
    from .sinks import CSV_COLUMNS
    from .sources import SourceError

    total = frame_count(Path(source))
    if not total:
        raise SourceError(f"{source}: --workers needs a video file that declares its frame count")
    overlap = 2 * options.detect_every if overlap is None else overlap
    lookahead = max(options.rts.lag, options.rts.live_lag) + 1
    segments = plan(total, workers, overlap, lookahead)
    folder = out_csv.with_name(out_csv.name + ".segments")
    folder.mkdir(parents=True, exist_ok=True)
    per_worker = threads or max(1, (os.cpu_count() or 1) // len(segments))
    jobs = [{"source": source, "csv": str(folder / f"segment-{k:04d}.csv"), "options": options,
             "weights": str(weights) if weights else None, "ladder": ladder, "kind": kind, "threads": per_worker,
             "track_start": s.track_start, "track_end": s.track_end, "first_id": k * ID_STRIDE}
            for k, s in enumerate(segments)]
    todo = [job for job in jobs if not (resume and Path(job["csv"] + ".done").exists())]
    if resume and len(todo) < len(jobs):
        log.info("%s: %d of %d segments were done, %d to go", source, len(jobs) - len(todo), len(jobs), len(todo))
    _run_jobs(todo, ray_address)
    parts = [Path(job["csv"]) for job in jobs]
    tmp = out_csv.with_name(out_csv.name + ".partial")
    stitch(parts, segments, tmp, CSV_COLUMNS)
    os.replace(tmp, out_csv)
    for part in parts:
        part.unlink()
        Path(str(part) + ".done").unlink()
    folder.rmdir()
    log.info("%s: %d frames in %d segments -> %s", source, total, len(segments), out_csv)
    return 0


def _read(part: Path) -> tuple[list[str], dict[int, list[list[str]]]]:
    with open(part, newline="") as f:
        reader = csv.reader(f)
        header = next(reader)
        rows: dict[int, list[list[str]]] = {}
        for row in reader:
            rows.setdefault(int(row[0]), []).append(row)
    return header, rows


def _boxes(rows: dict[int, list[list[str]]], header: list[str], frames) -> dict[int, dict[int, np.ndarray]]:
    """{face_id: {frame: box}} of the trusted rows on `frames`."""
    b0, success = header.index("box_x0"), header.index("success")
    out: dict[int, dict[int, np.ndarray]] = {}
    for t in frames:
        for row in rows.get(t, []):
            if row[success] == "1":
                out.setdefault(int(row[1]), {})[t] = np.array([float(v) for v in row[b0:b0 + 4]])
    return out


def join_ids(before: dict[int, dict[int, np.ndarray]], after: dict[int, dict[int, np.ndarray]]) -> dict[int, int]:
    """{later worker's id: earlier worker's id} for the tracks that are one face (module docstring)."""
    from scipy.optimize import linear_sum_assignment

    from .tracking import iou

    a_ids, b_ids = list(before), list(after)
    if not a_ids or not b_ids:
        return {}
    score = np.zeros((len(b_ids), len(a_ids)))
    for i, b in enumerate(b_ids):
        for j, a in enumerate(a_ids):
            common = sorted(set(after[b]) & set(before[a]))
            if common:
                score[i, j] = np.mean([iou(after[b][t][None], before[a][t][None])[0, 0] for t in common])
    rows, cols = linear_sum_assignment(-score)
    return {b_ids[i]: a_ids[j] for i, j in zip(rows, cols) if score[i, j] >= JOIN_IOU}


def stitch(parts: list[Path], segments: list[Segment], out: Path, columns: list[str]) -> None:
    """The segments' CSVs -> one CSV: each frame once, in order, ids joined across boundaries and numbered from 0
    in order of first appearance."""
    final: dict[int, int] = {}          # worker-local id -> the file's id
    next_id = 0
    previous = None                     # (header, rows) of the previous segment
    with open(out, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(columns)
        for k, (part, seg) in enumerate(zip(parts, segments)):
            header, rows = _read(part)
            if header[:len(columns)] != columns:
                raise ValueError(f"{part}: not this version's CSV columns")
            if previous is not None:
                overlap = range(seg.track_start, seg.start)
                joined = join_ids(_boxes(previous[1], previous[0], overlap), _boxes(rows, header, overlap))
                for local, earlier in joined.items():
                    final[local] = final[earlier]
            for t in range(seg.start, seg.end + 1):
                for row in rows.get(t, []):
                    local = int(row[1])
                    if local >= 0:
                        if local not in final:
                            final[local], next_id = next_id, next_id + 1
                        row = [row[0], str(final[local]), *row[2:]]
                    writer.writerow(row)
            previous = (header, rows)


def check(args) -> None:
    """--workers' flag rules (a usage error each): one video file, one CSV, nothing it cannot split."""
    from .sources import SourceError

    if args.workers <= 1:
        return
    source = Path(str(args.source))
    if not source.is_file():
        raise SourceError(f"{args.source}: --workers splits one video file (a folder runs its videos one by one)")
    if args.csv is None or str(args.csv) == "-":
        raise SourceError("--workers writes the stitched CSV to a file: give --csv FILE")
    if args.jsonl or args.parquet or args.save_video or args.save_faces or args.show:
        raise SourceError("--workers writes a CSV only (no --jsonl, --parquet, --save-video, --save-faces or --show "
                          "with it)")

