"""Regenerate the results page (docs/results.md) from benchmarks/results/*.json (no numbers are typed by hand).

    python -m benchmarks.report            # rewrite the block between the results markers in docs/results.md
    python -m benchmarks.report --run      # first run model_latency, speed and lowres, then rewrite
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .common import RESULTS, markdown_header, pct, replace_block

RESULTS_PAGE = Path(__file__).resolve().parents[1] / "docs" / "results.md"
START, END = "<!-- results:start -->", "<!-- results:end -->"


def _load(name: str) -> dict | None:
    path = RESULTS / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def latency_section() -> list[str]:
    data = _load("model_latency")
    if not data:
        return ["_model latency: not run yet (`python -m benchmarks.model_latency`)_", ""]
    vnni = data["machine"].get("int8_dot_product", "unknown")
    bundled = any(name.endswith("(bundled)") for name in data["presets"])
    command = "python -m benchmarks.model_latency" + (" --bundled" if bundled else "")
    rounds = f", {data['rounds']} interleaved rounds" if "rounds" in data else ""
    lines = [f"**Model alone, batch 1** (`{command}`, {list(data['presets'].values())[0]['threads']} threads{rounds}, "
             f"{data['machine']['cores']}-core CPU, int8 dot product: {vnni}; random weights except the bundled int8 files"
             + ("; '(bundled)' rows: the architecture of the shipped float file" if bundled else "") + "):", "",
             *markdown_header("preset", "fusion", "params", "GFLOPs", "torch ms p50 / p95", "ONNX Runtime ms p50 / p95",
                              "ORT FPS", "ORT heatmaps only (tracker) ms p50 / p95", "ORT int8 (bundled) ms p50 / p95")]

    def ms(r, key):
        return f"{r[key + '_p50']:.2f} / {r[key + '_p95']:.2f}" if key + "_p50" in r else "-"

    for name, r in data["presets"].items():
        lines.append(f"| {name} | {r.get('fusion', '-')} | {r['params'] / 1e6:.2f}M | {r['gflops']:.2f} | {r['torch_ms_p50']:.1f} / {r['torch_ms_p95']:.1f} "
                     f"| {r['ort_ms_p50']:.2f} / {r['ort_ms_p95']:.2f} | {r['ort_fps']:.0f} | {ms(r, 'ort_heatmaps_ms')} "
                     f"| {ms(r, 'ort_int8_ms')} |")
    return lines + [""]


def speed_section() -> list[str]:
    data = _load("speed")
    if not data:
        return ["_end-to-end speed: not run yet (`python -m benchmarks.speed`)_", ""]
    lines = [f"**End to end** (`python -m benchmarks.speed`: {Path(data['video']).name} letterboxed to {data['size']}, "
             f"{data['frames']} frames, decode -> CSV, {data['threads']} threads; shtrack rows: median of "
             f"{data.get('repeats', 1)} runs):", "",
             *markdown_header("pipeline", "FPS (min-max of runs)", "faces/frame", "ms/frame p50 / p95 (result to result)", "infer p50",
                      "detect p50", "x dlib", "x MediaPipe")]
    for key, r in data["results"].items():
        total = r.get("total_ms")
        tot = f"{total['p50']:.1f} / {total['p95']:.1f}" if total else f"{1000 / r['fps']:.1f} (mean)"
        infer = r["stages"].get("infer", r["stages"].get("landmarks", {})).get("p50", float("nan"))
        ratios = [f"{r[k]:.1f}" if k in r else "-" for k in ("ratio_to_dlib", "ratio_to_mediapipe")]
        detect = f"{r['stages']['detect']['p50']:.2f}" if "detect" in r["stages"] else "(in graph)"
        runs = r.get("fps_runs", [])
        fps = f"{r['fps']:.1f}" + (f" ({min(runs):.1f}-{max(runs):.1f})" if len(runs) > 1 else "")
        lines.append(f"| {key} | {fps} | {r['faces_per_frame']:.2f} | {tot} | {infer:.2f} | "
                     f"{detect} | {' | '.join(ratios)} |")
    return lines + [""]


def lowres_section() -> list[str]:
    data = _load("lowres")
    if not data:
        return ["_low-resolution accuracy: not run yet (`python -m benchmarks.lowres`)_", ""]
    frames = sum(data["frames"].values())
    lines = [f"**Accuracy vs face width** (`python -m benchmarks.lowres`: held-out clips {', '.join(data['clips'])}, "
             f"{frames} frames, each scaled into a 320x240 frame; reference = dlib's landmarks on the full-resolution "
             "frame, so dlib is measured against itself):", "",
             *markdown_header("face width", "method", "found", "NME", "FR@0.08", "AUC@0.08", "jitter", "jitter (trend)",
                      "lag (frames)", left=2)]
    for width, per in data["results"].items():
        for name, s in per.items():
            lines.append(f"| {width} px | {name} | {pct(s['found'], 1)} | {pct(s['nme'])} | {pct(s['fr@0.08'], 1)} | "
                         f"{s['auc@0.08']:.3f} | {s['jitter']:.4f} | {s['jitter_trend']:.4f} | {s['lag']:+.2f} |")
    cost = data.get("mediapipe_mapping")
    if cost:
        lines += ["", f"MediaPipe's 468 points are mapped to the 68 by the nearest vertex per point, fitted on "
                      f"{cost['fit_frames']} frames of training clips (`python -m benchmarks.peers fit-map`). The "
                      f"mapping alone costs {cost['held_out_nme']:.2%} NME against dlib on {cost['held_out_frames']} "
                      "full-resolution frames of the held-out clips (frames where MediaPipe lost the face "
                      "excluded): part of MediaPipe's error at every width is this convention gap, not tracking "
                      "error."]
    lines += ["", "![NME vs face size](results-img/nme_vs_face_size.png) ![CED](results-img/ced.png)", ""]
    return lines + smoothing_section(data)


def smoothing_section(data: dict) -> list[str]:
    """The smoothing modes side by side (rows NAME = auto, NAME+MODE of the same lowres run)."""
    first = next(iter(data["weights"]), None)
    modes = {"none": f"{first}+none", "auto, file (rts, 2 frames)": first, "auto, live (rts, 1 frame)": f"{first}+live",
             "one-euro (live, no delay)": f"{first}+one-euro"}
    if first is None or any(name not in data["results"][w] for w in data["results"] for name in modes.values()):
        return []
    lines = [f"**Smoothing modes** (same run, `{first}`; jitter against the teacher as labelled and against its "
             "trend, lag: `benchmarks/lowres.py`; change against `none` in brackets; time = smoothing stage per face "
             "and frame, measured in this run; output delay in the mode's name):",
             "", *markdown_header("face width", "mode", "NME", "FR@0.08", "jitter", "jitter (trend)", "lag (frames)",
                          "ms / face", left=2)]
    for width, per in data["results"].items():
        base = per[modes["none"]]
        for label, name in modes.items():
            s, b = per[name], None if label == "none" else base
            lines.append(f"| {width} px | {label} | {pct(s['nme'])}{_vs(s, b, 'nme', '+.1%')} | "
                         f"{pct(s['fr@0.08'], 1)} | {s['jitter']:.4f}{_vs(s, b, 'jitter')} | "
                         f"{s['jitter_trend']:.4f}{_vs(s, b, 'jitter_trend')} | {s['lag']:+.2f} | "
                         f"{s.get('smooth_ms_per_face', float('nan')):.3f} |")
    return lines + [""]


def _vs(scores: dict, base: dict | None, key: str, fmt: str = "+.0%") -> str:
    """' (+x%)': the change of scores[key] against base[key]; nothing for the base row itself (base None)."""
    return "" if base is None else f" ({scores[key] / base[key] - 1:{fmt}})"


def crowd_section() -> list[str]:
    data = _load("crowd")
    if not data:
        return ["_crowd scenes: not run yet (`python -m benchmarks.crowd`)_", ""]
    lines = [f"**Surveillance scenes** (`python -m benchmarks.crowd`: held-out 300W heads on face-free photos, "
             f"{data['frames']} frames each, default flags, detector {data.get('detector', 'yunet')}; FPS is the "
             f"whole `shtrack` process, imports and model loading included; {data['machine']['cores']}-core CPU, "
             f"int8 dot product: {data['machine'].get('int8_dot_product', 'unknown')}):", "",
             *markdown_header("scene", "model", "recall", "recall by face width", "false faces / frame", "NME", "FR@0.08",
                      "id switches / 1k", "FPS", left=2)]
    haar = _load("crowd_haar")
    runs = [(data, "")] + ([(haar, " (Haar)")] if haar else [])
    for run, tag in runs:
        for entry in run["scenes"]:
            for model, r in entry["models"].items():
                by_width = " / ".join(f"{k}: {v:.3f}" for k, v in r["recall_by_width"].items())
                lines.append(f"| {entry['scene']} | {model}{tag} | {r['recall']:.3f} | {by_width} | "
                             f"{r['false_per_frame']:.3f} | {pct(r['nme'])} | {pct(r['fr_008'], 1)} | "
                             f"{r['id_switches_per_1000']:.1f} | {r['fps']:.1f} |")
    for model, r in data.get("street", {}).items():
        lines.append("")
        lines.append(f"`street_1080p.mp4` with {model}: {r['faces_per_frame']:.2f} faces per frame, "
                     f"{r['distinct_ids']} ids over {r['frames']} frames, {r['fps_with_video_sink']:.1f} FPS "
                     "(annotated video written too).")
    lines += ["", "![crowd](results-img/crowd.png)", ""]
    return lines + crowd_costs() + crowd_smoothing(data)


def crowd_costs() -> list[str]:
    """The models' CPU cost per scene and the frame rate it allows (`--costs`)."""
    data = _load("crowd_costs")
    if not data:
        return []
    lines = [f"**What the models allow** (`python -m benchmarks.crowd --costs`: each model on one thread, the "
             f"landmark model on all of a scene's faces in one call, YuNet {data['yunet_ms_per_640_tile']:.1f} ms "
             f"per 640-px tile over the detector pixels a frame needs with the default options; the ceiling is "
             f"2 cores' time over that, for a process that does nothing else):", "",
             *markdown_header("scene", "model", "ms per face", "detector px per frame", "landmarks + detector ms",
                      "ceiling FPS", left=2)]
    for entry in data["scenes"]:
        for model, r in entry["models"].items():
            lines.append(f"| {entry['scene']} | {model} | {r['ms_per_face']:.2f} | "
                         f"{entry['detector_px_per_frame'] / 1e6:.2f} M | {r['landmarks_ms']:.0f} + "
                         f"{entry['detect_ms']:.0f} | {r['ceiling_fps']:.1f} |")
    return lines + [""]


def crowd_smoothing(data: dict) -> list[str]:
    """Smoothing modes on the crowd scenes, against their exact truth (`--smoothing` runs)."""
    scenes = [e for e in data["scenes"] if e.get("smoothing")]
    if not scenes:
        return []
    model = data["models"][0]
    lines = [f"**Smoothing on the crowd scenes** (same run, {model}; truth without noise of its own, so jitter "
             "is the tracker's alone; change against `none` in brackets):", "",
             *markdown_header("scene", "mode", "NME", "jitter", "lag (frames)", "FPS", left=2)]
    for entry in scenes:
        labels = {"live": "rts, 1 frame (live default)"}
        modes = {"none": entry["smoothing"]["none"], "rts (default)": entry["models"][model],
                 **{labels.get(m, m): r for m, r in entry["smoothing"].items() if m != "none"}}
        for mode, r in modes.items():
            b = None if mode == "none" else modes["none"]
            lines.append(f"| {entry['scene']} | {mode} | {r['nme']:.2%}{_vs(r, b, 'nme', '+.1%')} | "
                         f"{r['jitter']:.4f}{_vs(r, b, 'jitter')} | {r['lag']:+.2f} | {r['fps']:.1f} |")
    return lines + [""]


def render() -> str:
    return "\n".join([START, *crowd_section(), *latency_section(), *speed_section(), *lowres_section(), END])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--run", action="store_true", help="run the benchmarks first")
    args = p.parse_args(argv)
    if args.run:
        from . import lowres, model_latency, speed

        model_latency.main([])
        speed.main([])
        lowres.main([])
    replace_block(RESULTS_PAGE, START, END, render())
    return 0


if __name__ == "__main__":
    sys.exit(main())
