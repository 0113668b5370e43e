#!/usr/bin/env bash
# The MediaPipe peer's own environment (.venv-mediapipe beside the repo's code). mediapipe==0.10.21 is the
# only release whose wheel carries its models (BlazeFace, FaceMesh), so it runs offline; it pins protobuf<5 and
# numpy<2, which cannot share an environment with onnx (protobuf>=6) in shtrack's base install.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
$PY -m venv .venv-mediapipe
.venv-mediapipe/bin/pip install -q --upgrade pip >/dev/null
.venv-mediapipe/bin/pip install -q "mediapipe==0.10.21" "av==18.1.0"
.venv-mediapipe/bin/python -c "import mediapipe, av; print('MediaPipe', mediapipe.__version__, 'ready in .venv-mediapipe')"
