"""Scale-out over a Ray cluster: one task per video file, retried when a worker dies.

    shtrack --source DIR_OF_VIDEOS --out DIR --ray auto|local|ray://head:10001

Each task runs exactly the serial per-file path (`tracker.run.run_source`) on a worker, so outputs are the same
bytes as a serial run. A bad input is not retried (it would fail again): it is reported and skipped.
Ray is the optional `[cluster]` extra.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from .pipeline import TrackerOptions
from .run import EXIT_PARTIAL, BatchReport, Outputs, batch_names, batch_outputs, run_source
from .sources import SourceError

log = logging.getLogger("shtrack")


def track_file(model: dict, options: TrackerOptions, outputs: Outputs, video: str, out_csv: str) -> tuple[str, str, str]:
    """Ray task body -> (video, "ok" | "partial" | "skipped", why). `model`: load_backend's arguments."""
    from sht_model.errors import WeightsError

    from .backends import load_backend

    try:
        backend = load_backend(model["weights"], model["kind"], model["device"], model["threads"])
        code = run_source(video, backend, options, batch_outputs(outputs, Path(out_csv)), model["threads"])
    except (SourceError, WeightsError, OSError) as exc:
        return video, "skipped", str(exc)
    return video, "partial" if code == EXIT_PARTIAL else "ok", ""


def run_batch_ray(videos: list[Path], out_dir: Path, address: str, model: dict, options: TrackerOptions,
                  outputs: Outputs, max_retries: int = 3, task_body: Callable = track_file) -> BatchReport:
    try:
        import ray
    except ImportError:
        raise SourceError("--ray needs Ray: pip install 'shtrack[cluster]'") from None
    from rich.progress import Progress

    if not ray.is_initialized():
        if address == "local":
            ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
        else:
            ray.init(address=address, log_to_driver=False)
    task = ray.remote(max_retries=max_retries, retry_exceptions=False)(task_body)
    out_dir.mkdir(parents=True, exist_ok=True)
    names = batch_names(videos)
    refs = {task.remote(model, options, outputs, str(v), str(out_dir / f"{names[v]}.csv")): v for v in videos}
    pending = list(refs)
    report = BatchReport(list(videos))
    with Progress(disable=outputs.quiet, transient=True) as progress:
        bar = progress.add_task(f"videos on Ray ({address})", total=len(pending))
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            for ref in done:
                try:
                    video, status, why = ray.get(ref)
                except ray.exceptions.RayError as exc:
                    report.lost.append(f"{refs[ref]}: {str(exc).splitlines()[0]}")
                    log.error("%s: its task failed after %d retries (%s)", refs[ref], max_retries,
                              str(exc).splitlines()[0])
                else:
                    if status == "skipped":
                        report.skipped[Path(video)] = why
                        log.error("skipped %s", why)
                    elif status == "partial":
                        report.partial.append(Path(video))
                progress.advance(bar)
    if not outputs.quiet:
        report.log_summary(out_dir)
    return report
