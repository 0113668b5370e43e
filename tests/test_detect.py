"""Detect stage: YuNet decoding on real images, the tiled scan, track confirmation and removal, shot changes."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from tracker.cuts import CutDetector
from tracker.demo import ASTRONAUT_FACE_CENTRE, ASTRONAUT_FACE_WIDTH
from tracker.detector import HaarDetector, YuNetDetector, load_detector
from tracker.options import TrackerOptions
from tracker.scan import Scanner, plan_scan
from tracker.tracking import Tracks, iou
from tracker.types import Frame


def _astronaut() -> np.ndarray:
    from skimage import data

    return cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)


def _background(width: int, height: int) -> np.ndarray:
    from skimage import data

    brick = cv2.cvtColor(data.brick(), cv2.COLOR_GRAY2BGR)
    return cv2.resize(brick, (width, height), interpolation=cv2.INTER_LINEAR)


def _paste_face(canvas: np.ndarray, centre: tuple[float, float], width: float) -> None:
    """The astronaut's head, scaled so its landmark box is `width` px, centred at `centre` (in place)."""
    photo = _astronaut()
    k = width / ASTRONAUT_FACE_WIDTH
    m = np.array([[k, 0, centre[0] - k * ASTRONAUT_FACE_CENTRE[0]], [0, k, centre[1] - k * ASTRONAUT_FACE_CENTRE[1]]])
    face = cv2.warpAffine(photo, m, canvas.shape[1::-1], flags=cv2.INTER_AREA)
    mask = np.zeros(photo.shape[:2], np.float32)
    cv2.ellipse(mask, (int(ASTRONAUT_FACE_CENTRE[0]), int(ASTRONAUT_FACE_CENTRE[1] - 15)), (70, 85), 0, 0, 360, 1, -1)
    alpha = cv2.warpAffine(mask, m, canvas.shape[1::-1])[..., None]
    canvas[:] = (alpha * face + (1 - alpha) * canvas).astype(np.uint8)


def test_yunet_decoding_puts_the_box_on_a_real_face():
    boxes = YuNetDetector().detect([_astronaut()])[0]
    assert len(boxes) == 1, boxes
    x0, y0, x1, y1, score = boxes[0]
    centre = np.array([(x0 + x1) / 2, (y0 + y1) / 2])
    assert score > 0.8
    # Landmark-box convention (tracker.detector's fit): centre and side of the astronaut's 68-point box.
    assert np.linalg.norm(centre - ASTRONAUT_FACE_CENTRE) < 0.1 * ASTRONAUT_FACE_WIDTH
    assert abs((x1 - x0) / ASTRONAUT_FACE_WIDTH - 1) < 0.15


def test_yunet_finds_nothing_on_face_free_photos():
    from skimage import data

    photos = [data.coffee()[..., ::-1], data.rocket()[..., ::-1], cv2.cvtColor(data.brick(), cv2.COLOR_GRAY2BGR),
              cv2.cvtColor(data.grass(), cv2.COLOR_GRAY2BGR), cv2.cvtColor(data.text(), cv2.COLOR_GRAY2BGR)]
    scanner = Scanner(YuNetDetector(), min_face=16)
    found = [scanner.full(np.ascontiguousarray(p)) for p in photos]
    strong = sum(int((f[:, 4] >= 0.6).sum()) for f in found)
    assert strong == 0, [f[:, 4] for f in found]


@pytest.mark.parametrize("name", ["yunet", "haar"])
def test_detectors_can_be_called_from_two_threads_at_once(name):
    """The scan of the next frame runs on a worker while re-checks run on the caller's thread."""
    from concurrent.futures import ThreadPoolExecutor

    detector = load_detector(name)
    big, crops = _astronaut(), [np.ascontiguousarray(_astronaut()[:128, :128])] * 4
    expected = (detector.detect([big])[0], detector.detect(crops))

    def work(i):
        return detector.detect([big])[0] if i % 2 else detector.detect(crops)

    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(work, range(24)))
    for i, got in enumerate(results):
        if i % 2:
            np.testing.assert_array_equal(got, expected[0])
        else:
            for a, b in zip(got, expected[1]):
                np.testing.assert_array_equal(a, b)


def test_load_detector_names():
    assert isinstance(load_detector("haar"), HaarDetector)
    with pytest.raises(ValueError, match="unknown detector"):
        load_detector("nope")


def test_scan_plan_covers_the_frame_and_spreads_over_the_period():
    plan = plan_scan(1920, 1080, 16, YuNetDetector)
    finest = [j for j in plan if j.scale == plan[0].scale]
    assert plan[0].scale == pytest.approx(2.0)
    covered = np.zeros((1080, 1920), bool)
    for job in finest:
        x0, y0, x1, y1 = job.region
        covered[y0:y1, x0:x1] = True
    assert covered.all()
    assert plan[-1].region == (0, 0, 1920, 1080)          # the coarsest level sees the whole frame at once

    scanner = Scanner(YuNetDetector(), 16, period=10)
    ran = []
    scanner._run = lambda image, jobs: ran.append(jobs) or np.zeros((0, 5), np.float32)
    image = np.zeros((1080, 1920, 3), np.uint8)
    for _ in range(10):
        scanner.step(image)
    done = [j for jobs in ran for j in jobs]
    # One period runs every job once (the pixel budget may carry one job over into the next period).
    assert done[:len(plan)] == plan and len(done) <= len(plan) + 1
    per_frame = [sum(j.pixels for j in jobs) for jobs in ran]
    assert max(per_frame) < 0.25 * sum(j.pixels for j in plan)


def test_a_face_on_a_tile_border_is_found_once():
    plan = plan_scan(1280, 720, 16, YuNetDetector)
    first, second = plan[0].region, plan[1].region
    assert second[0] < first[2], "neighbouring tiles overlap"
    border = first[2]                                        # the first tile's right edge, inside the second
    canvas = _background(1280, 720)
    _paste_face(canvas, (border - 4, 150), 22)
    boxes = Scanner(YuNetDetector(), 16).full(canvas)
    near = boxes[np.linalg.norm((boxes[:, :2] + boxes[:, 2:4]) / 2 - [border - 4, 150], axis=1) < 22]
    assert len(near) == 1, boxes
    assert len(boxes) == 1


def _faces(scores: list[float]) -> tuple[np.ndarray, np.ndarray]:
    """Landmarks for len(scores) faces in a row of 40-px boxes, each with that mean heatmap peak."""
    xy = np.zeros((len(scores), 68, 2), np.float32)
    for i in range(len(scores)):
        xy[i] = np.stack(np.meshgrid(np.linspace(0, 40, 17), np.linspace(0, 40, 4)), -1).reshape(-1, 2)[:68]
        xy[i, :, 0] += 100 * i
    return xy, np.array([[s] * 68 for s in scores], np.float32)


def test_new_tracks_are_confirmed_only_when_detector_and_landmarks_agree():
    tracks = Tracks(TrackerOptions(min_detector_score=0.6, confirm_confidence=0.55))
    boxes = np.array([[0, 0, 40, 40, 0.9], [100, 0, 140, 40, 0.9], [200, 0, 240, 40, 0.5]], np.float32)
    tracks.add_detections(boxes)
    assert len(tracks) == 3 and all(t.face_id == -1 for t in tracks.active)
    xy, conf = _faces([0.8, 0.3, 0.8])           # the second is no face to the landmark model, the third to the detector
    success, ended = tracks.update(xy, conf)
    assert success.tolist() == [True, False, False]
    assert [t.face_id for t in tracks.active] == [0], "ids are spent on confirmed faces only"
    assert ended == []


def test_weak_scan_detections_start_no_track():
    tracks = Tracks(TrackerOptions(candidate_score=0.45))
    tracks.add_detections(np.array([[0, 0, 40, 40, 0.4]], np.float32))
    assert len(tracks) == 0


def test_confirmed_track_ends_when_rechecks_find_no_face():
    tracks = Tracks(TrackerOptions(max_detector_misses=2))
    tracks.add_detections(np.array([[0, 0, 40, 40, 0.9]], np.float32))
    xy, conf = _faces([0.8])
    tracks.update(xy, conf)
    no_face = [np.zeros((0, 5), np.float32)]
    # The landmark model still sure: the detector alone ends the track only after 2 x 2 re-checks.
    for _ in range(3):
        tracks.recheck([0], no_face)
        assert tracks.update(xy, conf)[1] == []
    tracks.recheck([0], no_face)
    assert tracks.update(xy, conf)[1] == [0]
    # Unsure landmarks (drifted onto background): 2 re-checks end it.
    tracks = Tracks(TrackerOptions(max_detector_misses=2))
    tracks.add_detections(np.array([[0, 0, 40, 40, 0.9]], np.float32))
    tracks.update(xy, conf)
    _, unsure = _faces([0.45])
    tracks.recheck([0], no_face)
    assert tracks.update(xy, unsure)[1] == []
    tracks.recheck([0], no_face)
    assert tracks.update(xy, unsure)[1] == [0]
    # A re-check that finds the face resets the count.
    tracks = Tracks(TrackerOptions(max_detector_misses=2))
    tracks.add_detections(np.array([[0, 0, 40, 40, 0.9]], np.float32))
    tracks.update(xy, conf)
    for _ in range(6):
        tracks.recheck([0], no_face)
        tracks.recheck([0], [np.array([[0, 0, 40, 40, 0.7]], np.float32)])
        assert tracks.update(xy, unsure)[1] == []


def test_a_rechecked_track_whose_box_drifted_from_the_face_moves_towards_the_detection():
    """The 1080p small-face scene: a 15-px face's landmark box grew to 25 px and fell behind it while re-checks
    found the face (IoU 0.35 with the track); the crop box must move towards the detection then (half way: a
    full jump makes the landmarks jump), not stay where the landmarks put it."""
    tracks = Tracks()
    tracks.add_detections(np.array([[0, 0, 40, 40, 0.9]], np.float32))
    xy, conf = _faces([0.8])
    tracks.update(xy, conf)
    grown = tracks.boxes()[0].copy()
    face = np.array([[14, 6, 40, 32, 0.8]], np.float32)             # inside the grown box, IoU 0.42
    assert 0.3 <= iou(grown[None], face[:, :4])[0, 0] < 0.5
    tracks.recheck([0], [face])
    assert np.allclose(tracks.boxes()[0], (grown + face[0, :4]) / 2)
    # A detection that agrees closely leaves the landmark-driven box alone.
    tracks.update(xy, conf)
    close = np.array([[1, 1, 41, 39, 0.8]], np.float32)
    tracks.recheck([0], [close])
    assert np.allclose(tracks.boxes()[0], grown)


def test_landmarks_of_a_face_going_behind_someone_are_withheld_while_the_track_goes_on():
    """The street scene's woman behind a passer-by's shoulder: re-checks stop finding her face and the landmark
    model's confidence falls from 0.75 to ~0.4, landmarks on his jacket. Such frames are not reported as found;
    a face whose usual confidence is that low (small, turned) is not affected by a missed re-check."""
    no_face = [np.zeros((0, 5), np.float32)]
    xy, sure = _faces([0.75])
    _, unsure = _faces([0.42])
    tracks = Tracks(TrackerOptions(max_detector_misses=2))
    tracks.add_detections(np.array([[0, 0, 40, 40, 0.9]], np.float32))
    for _ in range(5):
        assert tracks.update(xy, sure)[0].tolist() == [True]
    assert tracks.update(xy, unsure)[0].tolist() == [True], "the detector still agrees: a bad frame, reported"
    tracks.recheck([0], no_face)
    success, ended = tracks.update(xy, unsure)
    assert success.tolist() == [False] and ended == [] and len(tracks) == 1
    tracks.recheck([0], [np.array([[0, 0, 40, 40, 0.8]], np.float32)])      # out from behind the shoulder
    assert tracks.update(xy, unsure)[0].tolist() == [True]
    hard = Tracks(TrackerOptions(max_detector_misses=2))
    hard.add_detections(np.array([[0, 0, 40, 40, 0.9]], np.float32))
    _, low = _faces([0.45])
    for _ in range(5):
        hard.update(xy, low)
    hard.recheck([0], no_face)
    assert hard.update(xy, unsure)[0].tolist() == [True]


def test_a_detection_covering_part_of_a_tracked_face_starts_no_second_track():
    """The street scene's man looking down: a detection on his forehead and hair overlapping his track by a third
    (IoU 0.2) started a second face with landmarks on his hair. A neighbouring face still starts its own."""
    tracks = Tracks()
    tracks.add_detections(np.array([[578, 632, 670, 724, 0.9]], np.float32))
    xy, conf = _faces([0.8])
    xy = xy * (92 / 40) + [578, 632]
    tracks.update(xy, conf)
    forehead = np.array([[601, 581, 679, 659, 0.66]], np.float32)
    assert iou(tracks.boxes(), forehead).max() < 0.3
    tracks.add_detections(forehead)
    assert len(tracks) == 1
    neighbour = np.array([[668, 640, 740, 712, 0.8]], np.float32)        # touching, a few px of overlap
    tracks.add_detections(neighbour)
    assert len(tracks) == 2


def test_a_lost_face_found_again_where_it_was_heading_gets_its_id_back():
    """A face the landmark model lost for a few frames is looked for at every re-check where it was heading, and
    comes back under its id; a second face that fails confirmation there does not end the search."""
    tracks = Tracks(TrackerOptions(max_misses=1, detect_every=10))
    tracks.add_detections(np.array([[0, 0, 40, 40, 0.9], [100, 0, 140, 40, 0.9]], np.float32))
    xy, good = _faces([0.8, 0.8])
    tracks.update(xy, good)                                 # ids 0 and 1
    _, bad = _faces([0.8, 0.1])
    ended = []
    for _ in range(2):
        ended += tracks.update(xy, bad)[1]
    assert ended == [1] and [t.face_id for t in tracks.active] == [0]
    assert tracks.lost_boxes().shape == (1, 4)
    # The detector finds something there, but the landmark model does not agree: not confirmed, still looked for.
    tracks.find_lost([np.array([[101, 1, 141, 41, 0.8]], np.float32)])
    assert len(tracks) == 2 and tracks.active[1].face_id == -1
    tracks.update(xy[[0, 1]], bad)
    assert len(tracks) == 1 and len(tracks.lost) == 1
    # Found again: confirmed with its old id, no new id spent.
    tracks.find_lost([np.array([[101, 1, 141, 41, 0.8]], np.float32)])
    success, _ = tracks.update(xy, good)
    assert success.tolist() == [True, True] and [t.face_id for t in tracks.active] == [0, 1]
    assert tracks.lost == []
    tracks.add_detections(np.array([[400, 0, 440, 40, 0.9]], np.float32))      # a new face: the next id
    tracks.update(np.concatenate([xy, xy[:1] + [400, 0]]), np.concatenate([good, good[:1]]))
    assert tracks.active[2].face_id == 2


def test_lost_faces_are_forgotten_after_a_scan_period_and_at_a_cut():
    tracks = Tracks(TrackerOptions(max_misses=0, detect_every=5))
    tracks.add_detections(np.array([[0, 0, 40, 40, 0.9]], np.float32))
    xy, good = _faces([0.8])
    _, bad = _faces([0.1])
    tracks.update(xy, good)
    tracks.update(xy, bad)
    assert len(tracks.lost) == 1
    for _ in range(4):
        tracks.update(xy[:0], bad[:0])
    assert len(tracks.lost) == 1
    tracks.update(xy[:0], bad[:0])
    assert tracks.lost == [], "after detect_every frames the scan has looked everywhere"
    tracks.add_detections(np.array([[0, 0, 40, 40, 0.9]], np.float32))
    tracks.update(xy, good)
    tracks.update(xy, bad)
    assert len(tracks.lost) == 1
    tracks.clear()
    assert tracks.lost == []


def test_overlapping_tracks_merge_into_the_older():
    tracks = Tracks()
    tracks.add_detections(np.array([[0, 0, 40, 40, 0.9], [100, 0, 140, 40, 0.9]], np.float32))
    xy, conf = _faces([0.8, 0.8])
    tracks.update(xy, conf)
    assert [t.face_id for t in tracks.active] == [0, 1]
    ended = []
    for _ in range(10):                            # the second track's landmarks slide onto the first face
        xy[1, :, 0] -= 10
        ended += tracks.update(xy, conf)[1]
        if len(tracks) == 1:
            break
    assert [t.face_id for t in tracks.active] == [0] and ended == [1]


def test_cut_detector_fires_on_a_join_not_on_motion():
    from tracker.demo import demo_frames

    frames = demo_frames(100)                                    # the bundled clip: moving, turning, zooming
    cuts = CutDetector()
    assert not any(cuts.is_cut(f) for f in frames)
    other = _background(320, 240)
    assert cuts.is_cut(other)
    assert not cuts.is_cut(np.roll(other, 2, axis=1))           # a 2-px pan is no cut


def test_ids_never_span_a_shot_change(bundled_weights):
    from tracker.backends import load_backend
    from tracker.demo import demo_frames
    from tracker.pipeline import FaceTracker

    first = demo_frames(20)
    second = []
    for i in range(10):
        canvas = _background(320, 240)
        _paste_face(canvas, (230 - i, 100), 40)
        second.append(canvas)
    tracker = FaceTracker(load_backend(bundled_weights, "onnxruntime"))
    results = [tracker.process(Frame(i + 1, i / 25, f)) for i, f in enumerate(first + second)]
    before = {int(i) for r in results[:20] for i in r.faces.face_id}
    after = {int(i) for r in results[20:] for i in r.faces.face_id}
    assert before and after and not before & after
    cut = results[20].faces
    assert cut.success.sum() == 1, "the new shot's face is found on its first frame"
    box = cut.boxes[cut.success][0]
    assert np.linalg.norm((box[:2] + box[2:]) / 2 - [230, 100]) < 10


def test_track_motion_is_the_measured_motion_at_constant_velocity():
    tracks = Tracks()
    tracks.add_detections(np.array([[0, 0, 40, 40, 0.9]], np.float32))
    xy, conf = _faces([0.8])
    for t in range(8):
        tracks.update(xy + [4.0 * t, 0.0], conf)
    track = tracks.active[0]
    np.testing.assert_allclose(track.velocity, [4.0, 0.0], atol=1e-6)
    measured_centre = (xy[0].min(0) + xy[0].max(0)) / 2 + [4.0 * 7, 0.0]
    np.testing.assert_allclose((track.box[:2] + track.box[2:]) / 2 - measured_centre, [2.0, 0.0], atol=1e-5)


def test_faces_validates_shapes_instead_of_reshaping():
    from tracker.types import Faces

    xy = np.zeros((2, 68, 2))
    ok = Faces(xy, np.zeros((2, 68)), np.zeros((2, 4)), np.arange(2), np.ones(2, bool))
    assert ok.xy.shape == (2, 68, 2) and ok.xy.dtype == np.float32
    with pytest.raises(ValueError, match="xy must have shape"):
        Faces(xy.transpose(0, 2, 1), np.zeros((2, 68)), np.zeros((2, 4)), np.arange(2), np.ones(2, bool))
    with pytest.raises(ValueError, match="boxes"):
        Faces(xy, np.zeros((2, 68)), np.zeros((2, 5)), np.arange(2), np.ones(2, bool))


def test_a_sure_detector_confirms_a_face_the_landmark_model_is_less_sure_of():
    tracks = Tracks(TrackerOptions(min_confidence=0.35, min_detector_score=0.6, confirm_confidence=0.55, strong_detector_score=0.75))
    tracks.add_detections(np.array([[0, 0, 40, 40, 0.8], [100, 0, 140, 40, 0.65], [200, 0, 240, 40, 0.8]], np.float32))
    xy, conf = _faces([0.45, 0.45, 0.3])
    success, _ = tracks.update(xy, conf)
    assert success.tolist() == [True, False, False]


def test_scanning_the_next_frame_ahead_on_a_worker_gives_the_same_results(bundled_weights):
    """run_frames(ahead=True) scans frame t+1 on a worker thread while frame t's landmarks run; tracks, ids and
    landmarks must be exactly those of the plain loop, across a shot change too."""
    import threading

    from tracker.backends import load_backend
    from tracker.demo import demo_frames
    from tracker.pipeline import FaceTracker, run_frames

    images = demo_frames(12)
    for i in range(6):
        canvas = _background(320, 240)
        _paste_face(canvas, (230 - 2 * i, 100), 40)
        images.append(canvas)
    frames = [Frame(i + 1, i / 25, f) for i, f in enumerate(images)]
    backend = load_backend(bundled_weights, "onnxruntime")
    runs = {}
    for ahead in (False, True):
        tracker = FaceTracker(backend, TrackerOptions(detect_every=3))
        scan, threads = tracker.scan, set()
        tracker.scan = lambda frame, scan=scan, threads=threads: threads.add(threading.current_thread().name) or scan(frame)
        runs[ahead] = (list(run_frames(frames, tracker, ahead=ahead)), threads)
    (plain, plain_threads), (overlapped, worker_threads) = runs[False], runs[True]
    assert plain_threads == {threading.current_thread().name}
    assert worker_threads and threading.current_thread().name not in worker_threads
    assert [r.frame.index for r in overlapped] == [r.frame.index for r in plain] == list(range(1, 19))
    for a, b in zip(plain, overlapped):
        np.testing.assert_array_equal(a.faces.face_id, b.faces.face_id)
        np.testing.assert_array_equal(a.faces.xy, b.faces.xy)
    assert {int(i) for r in plain[:12] for i in r.faces.face_id}.isdisjoint(
        int(i) for r in plain[12:] for i in r.faces.face_id)


def test_a_scan_for_another_frame_is_refused(bundled_weights):
    from tracker.backends import load_backend
    from tracker.pipeline import FaceTracker

    tracker = FaceTracker(load_backend(bundled_weights, "onnxruntime"))
    image = _background(320, 240)
    scan = tracker.scan(Frame(1, 0.0, image))
    with pytest.raises(RuntimeError, match="scan of frame 1 given for frame 2"):
        tracker.process(Frame(2, 0.04, image), scan=scan)


def test_a_new_face_needs_more_confidence_than_a_tracked_one_keeps_without_the_detector():
    """Defaults: a candidate at 0.56 mean peak is not confirmed (gravel scored that in a held-out crowd scene),
    while a confirmed face the re-checks miss is kept and reported at 0.57 (between the two thresholds)."""
    o = TrackerOptions()
    assert o.supported_confidence < 0.56 < 0.57 < o.confirm_confidence
    tracks = Tracks(o)
    tracks.add_detections(np.array([[0, 0, 40, 40, 0.7]], np.float32))
    xy, gravel = _faces([0.56])
    assert tracks.update(xy, gravel)[0].tolist() == [False] and len(tracks) == 0
    tracks.add_detections(np.array([[0, 0, 40, 40, 0.9]], np.float32))
    _, sure = _faces([0.8])
    tracks.update(xy, sure)
    _, between = _faces([0.57])
    no_face = [np.zeros((0, 5), np.float32)]
    for _ in range(o.max_detector_misses):
        tracks.recheck([0], no_face)
        success, ended = tracks.update(xy, between)
        assert ended == [] and success.tolist() == [True]
