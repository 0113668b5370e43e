"""Training inputs: a face crop degraded to a small face width, as a surveillance camera would see it.

Protocols (`--degrade`):
- `mixed`: HR crop (the hallucination target) -> downscale so the face is `face_width` px wide (area or bicubic,
  log-uniform in 12-64 px), optional Gaussian blur, noise and JPEG -> bicubic back up to the model's input size
  (the v0.2.0 weights were trained on it);
- `cctv`: what recorded surveillance footage does to a face, each with its own chance: low light and gamma,
  Gaussian, motion or defocus blur, sensor noise (Gaussian and shot noise), and a video codec (H.264 through
  PyAV as an I- or a P-frame at CRF 18-38, MPEG-4 part 2, MJPEG) or JPEG. Large faces are degraded too (the
  camera's codec does not spare them). Occluders and backgrounds (`occlude`, `composite`) act on the HR crop
  before any of this (train/data.py);
- `cctv-eval`: the fixed evaluation degradation, noise sigma 2 + H.264 CRF 28 (I-frame), the same for every face;
- `sht-m` (the paper's SHT-M protocol): the HR crop bicubically downscaled to the input size and nothing else
  (256 -> 64 px crops: a 4x smaller face, no blur, noise or JPEG).
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import cv2
import numpy as np


PROTOCOLS = ("mixed", "cctv", "cctv-eval", "sht-m")
CODECS = ("h264", "mpeg4", "mjpeg", "jpeg")
EVAL_NOISE_SIGMA = 2.0      # cctv-eval: Gaussian sensor noise (0-255 scale) on the small face
EVAL_CRF = 28               # cctv-eval: H.264 constant rate factor


@dataclass(frozen=True)
class DegradeConfig:
    protocol: str = "mixed"
    min_face_width: float = 12.0
    max_face_width: float = 64.0
    blur_prob: float = 0.3
    noise_prob: float = 0.3
    jpeg_prob: float = 0.3          # mixed: JPEG; cctv: a codec or JPEG (CODECS)
    light_prob: float = 0.0         # cctv: low light and gamma
    occlude_prob: float = 0.0       # an occluder on part of the face (hand, object, another face's patch)
    composite_prob: float = 0.0     # the face (landmark hull) pasted onto another picture's background

    def __post_init__(self):
        if self.protocol not in PROTOCOLS:
            raise ValueError(f"unknown degradation protocol {self.protocol!r}; choose from {', '.join(PROTOCOLS)}")
        if not 0 < self.min_face_width <= self.max_face_width:
            raise ValueError(f"face widths must satisfy 0 < min <= max, not {self.min_face_width} / {self.max_face_width}")
        for name in ("blur_prob", "noise_prob", "jpeg_prob", "light_prob", "occlude_prob", "composite_prob"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"{name} must be in [0, 1], not {getattr(self, name)}")


def degrade(hr: np.ndarray, face_width_hr: float, target_width: float, out_size: int,
            rng: np.random.Generator, cfg: DegradeConfig = DegradeConfig()) -> np.ndarray:
    """hr: (S, S, 3) uint8 RGB crop whose face is `face_width_hr` px wide -> (out_size, out_size, 3) uint8
    input in which the face carries only `target_width` px of real detail. Under `sht-m` the target width is
    ignored: the crop is resized bicubically to out_size, nothing more."""
    if cfg.protocol == "sht-m":
        return cv2.resize(hr, (out_size, out_size), interpolation=cv2.INTER_CUBIC)
    small_side = int(round(hr.shape[0] * target_width / max(face_width_hr, 1.0)))
    if cfg.protocol == "cctv-eval":
        side = max(min(small_side, out_size), 4)
        small = cv2.resize(hr, (side, side), interpolation=cv2.INTER_AREA)
        small = add_noise(small, EVAL_NOISE_SIGMA, rng)
        small = codec_roundtrip(small, "h264", EVAL_CRF)
        return cv2.resize(small, (out_size, out_size), interpolation=cv2.INTER_CUBIC)
    cctv = cfg.protocol == "cctv"
    if small_side >= out_size and not cctv:
        return cv2.resize(hr, (out_size, out_size), interpolation=cv2.INTER_AREA)
    small_side = max(min(small_side, out_size), 4)
    img = hr
    if cctv and rng.random() < cfg.light_prob:
        img = low_light(img, gain=rng.uniform(0.25, 1.0), gamma=rng.uniform(0.6, 1.8))
    if rng.random() < cfg.blur_prob:
        scale = hr.shape[0] / small_side          # one small-face pixel in HR pixels
        kind = rng.choice(["gaussian", "motion", "defocus"]) if cctv else "gaussian"
        if kind == "gaussian":
            img = cv2.GaussianBlur(img, (0, 0), rng.uniform(0.3, 1.2) * scale)
        elif kind == "motion":
            img = motion_blur(img, rng.uniform(1.0, 3.0) * scale, rng.uniform(0, 180))
        else:
            img = defocus_blur(img, rng.uniform(0.5, 1.5) * scale)
    interp = cv2.INTER_AREA if rng.random() < 0.5 else cv2.INTER_CUBIC
    small = cv2.resize(img, (small_side, small_side), interpolation=interp)
    if rng.random() < cfg.noise_prob:
        small = add_noise(small, rng.uniform(1, 8), rng, shot=rng.uniform(0, 0.5) if cctv else 0.0)
    if rng.random() < cfg.jpeg_prob:
        kind = rng.choice(CODECS) if cctv else "jpeg"
        if kind == "jpeg":
            small = jpeg_roundtrip(small, int(rng.integers(20 if cctv else 30, 90)))
        elif kind == "h264":
            small = codec_roundtrip(small, "h264", int(rng.integers(18, 39)), p_frame=bool(rng.random() < 0.5),
                                    shift=rng.uniform(-1.5, 1.5, 2))
        else:
            small = codec_roundtrip(small, kind, int(rng.integers(2, 25)))
    return cv2.resize(small, (out_size, out_size), interpolation=cv2.INTER_CUBIC)


def sample_face_width(rng: np.random.Generator, cfg: DegradeConfig = DegradeConfig()) -> float:
    """Log-uniform in [min, max]: small faces are the product's point, so they get their share."""
    return float(np.exp(rng.uniform(np.log(cfg.min_face_width), np.log(cfg.max_face_width))))


# --- the degradations, each on an RGB uint8 image, same size out --------------------------------------------

def add_noise(img: np.ndarray, sigma: float, rng: np.random.Generator, shot: float = 0.0) -> np.ndarray:
    """Gaussian read noise of `sigma` (0-255) plus shot noise whose variance grows with brightness (`shot` * value)."""
    x = img.astype(np.float32)
    noise = rng.normal(0.0, sigma, img.shape) if not shot else rng.normal(0.0, 1.0, img.shape) * np.sqrt(sigma ** 2 + shot * x)
    return np.clip(x + noise, 0, 255).astype(np.uint8)


def low_light(img: np.ndarray, gain: float, gamma: float) -> np.ndarray:
    """Exposure `gain` and a gamma curve (an under-exposed or badly tone-mapped camera)."""
    lut = np.clip(255.0 * gain * (np.arange(256) / 255.0) ** gamma, 0, 255).astype(np.uint8)
    return cv2.LUT(img, lut)


def motion_blur(img: np.ndarray, length: float, angle_deg: float) -> np.ndarray:
    """A straight-line kernel `length` px long at `angle_deg` (a face moving during the exposure)."""
    k = max(3, int(np.ceil(length)) | 1)
    kernel = np.zeros((k, k), np.float32)
    kernel[k // 2, :] = 1.0
    rot = cv2.getRotationMatrix2D(((k - 1) / 2, (k - 1) / 2), angle_deg, 1.0)
    kernel = cv2.warpAffine(kernel, rot, (k, k))
    return cv2.filter2D(img, -1, kernel / max(kernel.sum(), 1e-6), borderType=cv2.BORDER_REFLECT)


def defocus_blur(img: np.ndarray, radius: float) -> np.ndarray:
    """A disk kernel of `radius` px (a face outside the lens' depth of field)."""
    r = max(1, int(np.ceil(radius)))
    yy, xx = np.mgrid[-r:r + 1, -r:r + 1]
    kernel = (xx ** 2 + yy ** 2 <= radius ** 2 + 0.5).astype(np.float32)
    return cv2.filter2D(img, -1, kernel / kernel.sum(), borderType=cv2.BORDER_REFLECT)


def jpeg_roundtrip(img: np.ndarray, quality: int) -> np.ndarray:
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    return cv2.imdecode(buf, cv2.IMREAD_UNCHANGED) if ok else img


_CODEC = {"h264": ("libx264", "h264", "yuv420p"), "mpeg4": ("mpeg4", "m4v", "yuv420p"),
          "mjpeg": ("mjpeg", "mjpeg", "yuvj420p")}


def codec_roundtrip(img: np.ndarray, codec: str, quality: int, p_frame: bool = False,
                    shift: np.ndarray | None = None) -> np.ndarray:
    """Encode and decode `img` with a video codec (PyAV). quality: CRF for h264, qscale (2-31) for mpeg4 and
    mjpeg. With `p_frame` the image is the second frame of a two-frame stream whose first is the image moved by
    `shift` px, so it is coded as a prediction from it, as most frames of a recording are. Frames are padded
    to even sides of at least 16 (4:2:0 chroma, the encoders' minimum) and cropped back."""
    import av

    name, fmt, pix = _CODEC[codec]
    h, w = img.shape[:2]
    H, W = max(16, -(-h // 2) * 2), max(16, -(-w // 2) * 2)
    frame = np.pad(img, ((0, H - h), (0, W - w), (0, 0)), mode="edge")
    frames = [frame]
    if p_frame:
        dx, dy = (0.0, 1.0) if shift is None else shift
        moved = cv2.warpAffine(frame, np.float32([[1, 0, dx], [0, 1, dy]]), (W, H), borderMode=cv2.BORDER_REFLECT)
        frames = [moved, frame]
    buf = io.BytesIO()
    with av.open(buf, "w", format=fmt) as out:
        stream = out.add_stream(name, rate=25)
        stream.width, stream.height, stream.pix_fmt = W, H, pix
        if codec == "h264":
            stream.options = {"crf": str(quality), "preset": "veryfast", "tune": "zerolatency", "bf": "0"}
        else:
            stream.codec_context.qscale = int(quality)
            stream.options = {"qmin": str(quality), "qmax": str(quality)}
        for f in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    buf.seek(0)
    with av.open(buf, "r", format=fmt) as inp:
        decoded = [f.to_ndarray(format="rgb24") for f in inp.decode(video=0)]
    return np.ascontiguousarray(decoded[-1][:h, :w]) if decoded else img


# --- occluders and backgrounds on the HR crop (labels never move) --------------------------------------------

def occlude(hr: np.ndarray, face_box: np.ndarray, rng: np.random.Generator,
            donor: np.ndarray | None = None) -> np.ndarray:
    """Cover 10-40% of the face box with a hand (skin-coloured palm and fingers), an object (a textured
    rectangle or ellipse) or a patch of another face (`donor`, an HR crop of another picture). Only pixels
    change: the landmarks under the occluder stay where the face's points are."""
    out = hr.copy()
    x0, y0, x1, y1 = face_box
    side = max(x1 - x0, 8.0)
    kinds = ["hand", "object"] + (["patch"] if donor is not None else [])
    kind = rng.choice(kinds)
    cx, cy = rng.uniform(x0, x1), rng.uniform(y0 + 0.2 * side, y1)
    area = rng.uniform(0.1, 0.4) * side * side
    mask = np.zeros(hr.shape[:2], np.uint8)
    angle = rng.uniform(0, 180)
    if kind == "hand":
        a = np.sqrt(area / np.pi / 1.3)
        cv2.ellipse(mask, (int(cx), int(cy)), (int(a * 1.3), int(a)), angle, 0, 360, 255, -1)
        for k in range(4):    # fingers: thick lines out of the palm's upper edge
            t = np.deg2rad(angle - 60 + 40 * k)
            start = (cx + a * np.cos(t), cy - a * np.sin(t))
            end = (start[0] + 1.2 * a * np.cos(t), start[1] - 1.2 * a * np.sin(t))
            cv2.line(mask, tuple(int(v) for v in start), tuple(int(v) for v in end), 255, max(2, int(a * 0.35)))
        centre = hr[int(y0 + 0.4 * side):int(y0 + 0.7 * side), int(x0 + 0.3 * side):int(x1 - 0.3 * side)]
        skin = np.median(centre.reshape(-1, 3), 0) if centre.size else np.array([180, 140, 120])
        colour = np.clip(skin * rng.uniform(0.7, 1.2) + rng.normal(0, 10, 3), 0, 255)
        layer = np.empty_like(hr)
        layer[:] = colour.astype(np.uint8)
        shade = cv2.GaussianBlur(rng.normal(0, 12, hr.shape[:2]).astype(np.float32), (0, 0), side * 0.05)
        layer = np.clip(layer.astype(np.float32) + shade[..., None], 0, 255).astype(np.uint8)
    elif kind == "object":
        w = np.sqrt(area) * rng.uniform(0.6, 1.6)
        h = area / w
        if rng.random() < 0.5:
            box = cv2.boxPoints(((cx, cy), (w, h), angle)).astype(np.int32)
            cv2.fillConvexPoly(mask, box, 255)
        else:
            cv2.ellipse(mask, (int(cx), int(cy)), (int(w / 2), int(h / 2)), angle, 0, 360, 255, -1)
        colour = rng.uniform(0, 255, 3)
        texture = cv2.GaussianBlur(rng.normal(0, 30, hr.shape).astype(np.float32), (0, 0), rng.uniform(1, 6))
        layer = np.clip(colour + texture, 0, 255).astype(np.uint8)
    else:
        w = np.sqrt(area)
        cv2.rectangle(mask, (int(cx - w / 2), int(cy - w / 2)), (int(cx + w / 2), int(cy + w / 2)), 255, -1)
        dy, dx = rng.integers(-hr.shape[0] // 4, hr.shape[0] // 4 + 1, 2)
        layer = np.roll(cv2.resize(donor, hr.shape[1::-1]), (dy, dx), axis=(0, 1))
    alpha = cv2.GaussianBlur(mask, (0, 0), 1.0).astype(np.float32)[..., None] / 255.0
    return (out * (1 - alpha) + layer * alpha).astype(np.uint8)


def composite(hr: np.ndarray, xy: np.ndarray, background: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The face (the hull of its landmarks, grown upward to take in the forehead and feathered at the edge)
    over `background` (an HR crop of another picture): a face against a scene it was not photographed in."""
    hull = cv2.convexHull(xy.astype(np.float32))[:, 0]
    top = xy[:, 1].min()
    height = np.ptp(xy[:, 1])
    brow = xy[17:27]
    forehead = np.stack([brow[:, 0], top - rng.uniform(0.2, 0.45) * height + 0 * brow[:, 1]], 1)
    pts = cv2.convexHull(np.concatenate([hull, forehead]).astype(np.float32)).astype(np.int32)
    mask = np.zeros(hr.shape[:2], np.uint8)
    cv2.fillConvexPoly(mask, pts, 255)
    grow = max(1, int(0.06 * height))
    mask = cv2.dilate(mask, np.ones((grow, grow), np.uint8))
    alpha = cv2.GaussianBlur(mask, (0, 0), rng.uniform(1.0, 3.0) + 0.02 * height).astype(np.float32)[..., None] / 255.0
    bg = cv2.resize(background, hr.shape[1::-1])
    return (hr * alpha + bg * (1 - alpha)).astype(np.uint8)
