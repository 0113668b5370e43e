"""Scale-out over a Ray cluster: one task per video file, retried when a worker dies.

    shtrack --source DIR_OF_VIDEOS --out DIR --ray auto|local|ray://head:10001

Each task runs exactly the serial per-file path (`tracker.cli.run_one`) on a worker, so outputs are the same
bytes as a serial run. A bad input is not retried (it would fail again): it is reported and skipped.
Ray is the optional `[cluster]` extra.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

log = logging.getLogger("shtrack")


def _track_file(args_dict: dict, video: str, out_csv: str, crash_marker: str | None = None) -> tuple[str, str]:
    """Ray task body: (video, "ok" | error message)."""
    import os

    if crash_marker and not Path(crash_marker).exists():
        # Test hook: the first attempt dies like a lost worker (no exception, the process is gone).
        Path(crash_marker).write_text("crashed once")
        os._exit(1)
    from sht_model.errors import WeightsError

    from .backends import load_backend
    from .cli import run_one
    from .sources import SourceError

    args = argparse.Namespace(**args_dict)
    args.csv, args.jsonl, args.save_video, args.save_faces, args.show, args.quiet = Path(out_csv), None, None, None, False, True
    try:
        backend = load_backend(args.weights, args.backend, args.device, args.threads)
        run_one(args, video, backend)
    except (SourceError, WeightsError, OSError) as exc:
        return video, str(exc)
    return video, "ok"


def run_batch_ray(args, videos: list[Path], address: str, max_retries: int = 3, crash_marker: str | None = None) -> int:
    try:
        import ray
    except ImportError:
        from .sources import SourceError

        raise SourceError("--ray needs Ray: pip install 'shtrack[cluster]'") from None
    from rich.progress import Progress

    if not ray.is_initialized():
        if address == "local":
            ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
        else:
            ray.init(address=address, log_to_driver=False)
    task = ray.remote(max_retries=max_retries, retry_exceptions=False)(_track_file)
    args.out.mkdir(parents=True, exist_ok=True)
    args_dict = {k: v for k, v in vars(args).items() if k not in ("ray",)}
    from .cli import batch_names

    names = batch_names(videos)
    pending = [task.remote(args_dict, str(v), str(args.out / f"{names[v]}.csv"), crash_marker) for v in videos]
    failed = []
    with Progress(disable=args.quiet, transient=True) as progress:
        bar = progress.add_task(f"videos on Ray ({address})", total=len(pending))
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            for ref in done:
                try:
                    video, status = ray.get(ref)
                except ray.exceptions.RayError as exc:
                    failed.append(str(exc).splitlines()[0])
                    log.error("task failed after %d retries: %s", max_retries, failed[-1])
                else:
                    if status != "ok":
                        failed.append(video)
                        log.error("skipped %s", status)
                progress.advance(bar)
    if not args.quiet:
        log.info("%d of %d videos -> %s", len(videos) - len(failed), len(videos), args.out)
    return 2 if failed and len(failed) == len(videos) else 0
