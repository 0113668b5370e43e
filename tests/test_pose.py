"""Head pose (tracker.pose): known rotations of the 3D mean face in, the same angles out."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from tracker.pose import Camera, HeadPose, euler_xyz, mean_face, rotation_xyz


def _render(model, angles, t, camera, size=(1280, 720)):
    r = rotation_xyz(*angles)
    points, _ = cv2.projectPoints(model, cv2.Rodrigues(r)[0], np.asarray(t, np.float64), camera.matrix(*size), None)
    return points[:, 0]


def test_euler_angles_round_trip():
    for angles in ([0.1, -0.4, 0.2], [-0.5, 0.7, -0.3], [0.0, 0.0, 0.0]):
        np.testing.assert_allclose(euler_xyz(rotation_xyz(*angles)), angles, atol=1e-9)


@pytest.mark.parametrize("yaw", [-50, -30, 0, 30, 50])
@pytest.mark.parametrize("pitch", [-20, 0, 20])
def test_rendered_rotations_come_back_within_3_degrees(yaw, pitch):
    model = mean_face()
    camera = Camera()
    rng = np.random.default_rng([yaw + 90, pitch + 90])
    angles = np.deg2rad([pitch, yaw, rng.uniform(-15, 15)])
    t = [rng.uniform(-200, 200), rng.uniform(-100, 100), rng.uniform(800, 3000)]
    xy = _render(model, angles, t, camera) + rng.normal(0, 0.3, (68, 2))     # a third of a pixel of noise
    pose = HeadPose(camera).estimate(xy[None], (1280, 720))[0]
    assert np.rad2deg(np.abs(pose[3:] - angles)).max() < 3.0, (np.rad2deg(pose[3:]), np.rad2deg(angles))
    assert np.abs(pose[:3] - t).max() < 0.05 * t[2]


def test_the_mean_face_is_a_face():
    face = mean_face()
    assert face.shape == (68, 3)
    assert abs(np.linalg.norm(face[45] - face[36]) - 90.0) < 1e-2          # outer eye corners 90 mm apart
    assert face[30, 2] < (face[36, 2] + face[45, 2]) / 2 - 10              # the nose tip towards the viewer
    assert face[8, 1] > face[27, 1] + 60                                    # the chin well below the nose bridge
    assert face[36, 0] < 0 < face[45, 0]


def test_the_csv_carries_openfaces_pose_columns_before_the_landmarks(tmp_path):
    from tracker.cli import main

    out = tmp_path / "o.csv"
    assert main(["--source", "demo", "--csv", str(out), "--quiet", "--max-frames", "5"]) == 0
    header, first = out.read_text().splitlines()[:2]
    names = header.split(",")
    assert names[5:11] == ["pose_Tx", "pose_Ty", "pose_Tz", "pose_Rx", "pose_Ry", "pose_Rz"] and names[11] == "x_0"
    values = dict(zip(names, first.split(",")))
    assert 200 < float(values["pose_Tz"]) < 5000 and abs(float(values["pose_Ry"])) < 1.0


def test_collapsed_or_missing_points_give_no_pose_and_no_error():
    pose = HeadPose().estimate(np.stack([np.full((68, 2), 50.0), np.full((68, 2), np.nan)]), (320, 240))
    assert np.isnan(pose).all()
