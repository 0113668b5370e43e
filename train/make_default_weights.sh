#!/usr/bin/env bash
# The exact chain that produced tracker/assets/shtrack-cpu-rt.safetensors (run from the repo root, with
# ../shared/data beside it and `pip install -e ".[train,peers]"`). CPU only; wall times in MODEL_CARD.md.
set -euo pipefail
DATA=../shared/data
RUNS=${RUNS:-runs}

# 1. DHLN on the human-labelled 300W faces (196 held out), inputs degraded to 12-64 px faces.
python -m train dhln --preset cpu-rt --data $DATA/300w_train --steps 3000 --batch-size 32 --lr 2e-3 \
    --eval-every 250 --ckpt-every 250 --log-every 50 --val-widths 16 24 32 64 --out $RUNS/cpu-rt-dhln

# 2. Teacher labels for the training clips (every 3rd frame; held-out clips are excluded by train/video.py).
python -m train.label $DATA/videos $RUNS/labels --stride 3 \
    --only driving_d10 driving_d11 driving_d12 driving_d14 driving_d18 driving_d19 driving_d20 driving_d3 \
           driving_d6 driving_d9 source_s18 source_s20 source_s29 source_s32

# 3. FPTN pretrained on true heatmaps and HR faces of 300W rotation/scale pairs.
python -m train fptn --init $RUNS/cpu-rt-dhln/best.safetensors --data $DATA/300w_train --steps 300 \
    --batch-size 16 --lr 2e-4 --fptn-channels 32 --fptn-blocks 4 --ckpt-every 100 --log-every 25 \
    --out $RUNS/cpu-rt-fptn

# 4. SHT: DHLN + FPTN on 300W pairs, teacher-labelled video pairs and the same frames unlabelled.
python -m train sht --init $RUNS/cpu-rt-dhln/best.safetensors --fptn-init $RUNS/cpu-rt-fptn/fptn.safetensors \
    --data $DATA/300w_train --videos $DATA/videos --video-labels $RUNS/labels --steps 400 --batch-size 16 \
    --lr 3e-4 --warmup 20 --unlabelled-fraction 0.3 --fptn-channels 32 --fptn-blocks 4 --eval-every 100 \
    --ckpt-every 100 --log-every 25 --val-widths 16 24 32 64 --out $RUNS/cpu-rt-sht

# Shipped: the DHLN stage (step 3); the SHT result was worse on held-out human labels (MODEL_CARD.md).
cp $RUNS/cpu-rt-dhln/best.safetensors tracker/assets/shtrack-cpu-rt.safetensors
