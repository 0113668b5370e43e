"""The surveillance degradations of train/degrade.py, each on a tiny image, and their place in a training sample."""

from __future__ import annotations

import numpy as np
import pytest

from sht_model import build_model
from sht_model.geometry import landmark_box
from train import degrade as D
from train.data import Augment, make_sample


def _smooth(h=13, w=11, seed=0):
    """A smooth colour gradient with a little texture: what a codec can keep close."""
    yy, xx = np.mgrid[0:h, 0:w]
    img = np.stack([20 * xx + 10, 15 * yy + 30, 120 + 5 * (xx + yy)], -1).astype(np.float32)
    img += np.random.default_rng(seed).normal(0, 4, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


@pytest.mark.parametrize("codec,quality", [("h264", 28), ("mpeg4", 8), ("mjpeg", 8)])
@pytest.mark.parametrize("p_frame", [False, True])
def test_codec_round_trip_changes_pixels_and_keeps_the_size(codec, quality, p_frame):
    img = _smooth()
    if p_frame and codec != "h264":
        pytest.skip("P-frames are an H.264 option")
    out = D.codec_roundtrip(img, codec, quality, p_frame=p_frame, shift=np.array([1.0, -1.0]))
    assert out.shape == img.shape and out.dtype == np.uint8
    diff = np.abs(out.astype(int) - img.astype(int))
    assert diff.max() > 0, "a lossy codec changes pixels"
    assert diff.mean() < 25, "and keeps the picture"


def test_harder_compression_loses_more():
    img = _smooth(32, 32)
    err = [np.abs(D.codec_roundtrip(img, "h264", crf).astype(int) - img).mean() for crf in (10, 45)]
    assert err[1] > err[0]


def test_noise_light_and_blurs_keep_size_and_change_pixels():
    img = _smooth(24, 24)
    rng = np.random.default_rng(0)
    for out in (D.add_noise(img, 3.0, rng), D.add_noise(img, 1.0, rng, shot=0.5), D.low_light(img, 0.4, 1.5),
                D.motion_blur(img, 5.0, 30.0), D.defocus_blur(img, 2.0)):
        assert out.shape == img.shape and out.dtype == np.uint8 and not np.array_equal(out, img)
    dark = D.low_light(img, 0.4, 1.5)
    assert dark.mean() < 0.5 * img.mean()
    # Shot noise grows with brightness: a bright flat patch gets more than a dark one.
    flat = np.full((64, 64, 3), 200, np.uint8)
    bright = D.add_noise(flat, 0.0, np.random.default_rng(1), shot=1.0).std()
    darker = D.add_noise(flat // 10, 0.0, np.random.default_rng(1), shot=1.0).std()
    assert bright > 2 * darker


def test_cctv_protocol_keeps_the_input_size_for_small_and_large_faces():
    hr = np.random.default_rng(2).integers(0, 255, (256, 256, 3), dtype=np.uint8)
    cfg = D.DegradeConfig("cctv", blur_prob=1, noise_prob=1, jpeg_prob=1, light_prob=1)
    for width in (10.0, 30.0, 200.0):   # 200: a face larger than the input still goes through the camera
        out = D.degrade(hr, 150.0, width, 32, np.random.default_rng(3), cfg)
        assert out.shape == (32, 32, 3)
    big = D.degrade(hr, 150.0, 200.0, 32, np.random.default_rng(3), cfg)
    plain = D.degrade(hr, 150.0, 200.0, 32, np.random.default_rng(3), D.DegradeConfig("mixed"))
    assert not np.array_equal(big, plain)


def test_cctv_eval_is_noise_and_h264_at_fixed_settings():
    hr = np.random.default_rng(4).integers(0, 255, (256, 256, 3), dtype=np.uint8)
    a = D.degrade(hr, 150.0, 16.0, 64, np.random.default_rng(5), D.DegradeConfig("cctv-eval"))
    b = D.degrade(hr, 150.0, 16.0, 64, np.random.default_rng(5), D.DegradeConfig("cctv-eval"))
    np.testing.assert_array_equal(a, b)    # the same seed, the same input: an evaluation protocol
    clean = D.degrade(hr, 150.0, 16.0, 64, np.random.default_rng(5),
                      D.DegradeConfig("mixed", blur_prob=0, noise_prob=0, jpeg_prob=0))
    assert not np.array_equal(a, clean)


def _face():
    rng = np.random.default_rng(6)
    image = rng.integers(60, 200, (200, 200, 3), dtype=np.uint8)
    t = np.linspace(0, 2 * np.pi, 68, endpoint=False)
    xy = np.stack([100 + 45 * np.cos(t), 105 + 55 * np.sin(t)], 1).astype(np.float32)
    return image, xy


def test_an_occluder_or_a_new_background_never_moves_a_label():
    cfg = build_model("test").cfg
    image, xy = _face()
    donor = np.zeros((256, 256, 3), np.uint8)
    plain = make_sample(image, xy, cfg, np.random.default_rng(7), Augment(flip=False))
    for cfg_d in (D.DegradeConfig(occlude_prob=1.0), D.DegradeConfig(composite_prob=1.0)):
        changed = make_sample(image, xy, cfg, np.random.default_rng(7), Augment(flip=False), degrade_cfg=cfg_d,
                              donor=donor)
        np.testing.assert_array_equal(changed["landmarks"], plain["landmarks"])
        np.testing.assert_array_equal(changed["heatmaps"], plain["heatmaps"])
        assert not np.array_equal(changed["face"], plain["face"]), "the pixels did change"


def test_occluder_covers_part_of_the_face_box_only():
    image = np.full((256, 256, 3), 128, np.uint8)
    box = np.array([80.0, 80.0, 176.0, 176.0])
    for seed in range(6):
        out = D.occlude(image, box, np.random.default_rng(seed), donor=np.zeros_like(image))
        changed = np.abs(out.astype(int) - image).sum(-1) > 0
        assert 0.03 < changed[80:176, 80:176].mean() < 0.9
        assert changed[:40].sum() == 0, "nothing far above the face"


def test_composite_keeps_the_face_and_replaces_the_background():
    image, xy = _face()
    image = np.full((256, 256, 3), 200, np.uint8)
    xy = xy + 28
    out = D.composite(image, xy, np.zeros((256, 256, 3), np.uint8), np.random.default_rng(8))
    cx, cy = xy.mean(0).astype(int)
    assert (out[cy - 5:cy + 5, cx - 5:cx + 5] == 200).all(), "inside the landmark hull: the face"
    assert (out[:5, :5] == 0).all() and (out[-5:, -5:] == 0).all(), "far outside: the new background"
    x0, y0, x1, y1 = landmark_box(xy).astype(int)
    assert out[y1 + 20:, :].max() < 200


def test_new_probabilities_are_checked():
    for name in ("light_prob", "occlude_prob", "composite_prob"):
        with pytest.raises(ValueError, match=name):
            D.DegradeConfig(**{name: 1.5})
    with pytest.raises(ValueError, match="protocol"):
        D.DegradeConfig("cctv-x")


def test_teacher_labels_land_on_the_face_and_read_back_as_a_300w_folder(tmp_path):
    """python -m train.label faces: dlib's points on a photo whose human labels are known, within 8% of the
    inter-ocular distance (dlib is ~3% on 300W), written as a 300W layout that train's reader takes."""
    pytest.importorskip("dlib", reason="the teacher is dlib (pip install 'shtrack[peers]')")
    import shutil

    from tests.conftest import shared
    from train import metrics
    from train.label import main
    from train.readers import read_300w, read_pts

    src = shared("annotated")
    photos = tmp_path / "photos"
    photos.mkdir()
    for name in ("einstein", "breakingbad"):
        shutil.copy(src / f"{name}.jpg", photos / f"{name}.jpg")
    assert main(["faces", str(photos), "--out", str(tmp_path / "teacher")]) == 0
    records = read_300w(tmp_path / "teacher")
    assert len(records) >= 1 and (tmp_path / "teacher" / "finished").exists()
    for r in records:
        truth = read_pts(src / f"{r.image.stem}.pts")
        assert float(metrics.nme(r.landmarks[None], truth[None])[0]) < 0.08
    # A second run keeps what is there (an interrupted labelling goes on where it stopped).
    before = {p: p.stat().st_mtime_ns for p in (tmp_path / "teacher").rglob("*.pts")}
    assert main(["faces", str(photos), "--out", str(tmp_path / "teacher")]) == 0
    assert {p: p.stat().st_mtime_ns for p in (tmp_path / "teacher").rglob("*.pts")} == before


def test_teacher_faces_take_the_asked_share_of_a_mix():
    from train.loops import _mix

    class Set(list):
        seed = 0

    main, extra = [Set(range(100))], [Set(range(900))]
    mixed = _mix(main, extra, 0.5)
    n_main = sum(len(d) for d in mixed if d is not extra[0])
    assert abs(n_main / sum(len(d) for d in mixed) - 0.5) < 0.06
    assert len({d.seed for d in mixed if d is not extra[0]}) == len(mixed) - 1, "each repeat draws its own samples"
    assert _mix(main, [], 0.5) == main
