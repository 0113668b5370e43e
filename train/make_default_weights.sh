#!/usr/bin/env bash
# Every shipped file from v0.2.0's: the face-size ladder (cpu-small for small faces, cpu-rt for the rest) trained on
# the human-labelled 300W faces plus 22,000 teacher-labelled unlabelled faces under surveillance-like degradations,
# the equal-budget ablation of the ways to use unlabelled faces (control / teacher labels / SHT-i / SHT-v / teacher +
# SHT), the best arm polished and shipped as cpu-rt, cpu-fast from it, ONNX and int8 exports. Run from the repo root
# with ../shared/data beside it and `pip install -e ".[train,peers]"`; CPU only. The model card gives the wall time of
# each step. The v0.2.0 files themselves came from train/make_v0.2_weights.sh; this chain starts from the cpu-rt
# and the pretrained FPTN of that chain, taken from git history (commits a4bbe66 and 787fb52).
#
# Run it again after an interruption: every training step continues from its last checkpoint (--resume, at most
# --ckpt-every steps lost, then the same batches and schedule as if never stopped). A step that $RUNS/chain.log
# records as finished is skipped; delete its log line to run it again. Long (~8 h on a 2-core CPU): run it in the
# background, e.g.
#     mkdir -p runs/chain-4; RUNS=runs/chain-4 setsid nice -n 19 bash train/make_default_weights.sh >> runs/chain-4/chain.out 2>&1 &
#     echo 19 > /proc/$!/autogroup      # setsid makes a new scheduler autogroup; nice alone acts only inside it
# and pause / continue it (e.g. while timing something) with kill -STOP / -CONT -- -$PID (its process group).
source "$(dirname "${BASH_SOURCE[0]}")/chain_common.sh"   # DATA, RUNS, ASSETS, THREADS, LOG, step

from_history() {   # the v0.2.0 cpu-rt and the v0.2.0 chain's pretrained FPTN (its step 3), byte for byte
    mkdir -p $RUNS/v0.2.0
    git show a4bbe66:tracker/assets/shtrack-cpu-rt.safetensors > $RUNS/v0.2.0/cpu-rt.safetensors
    git show 787fb52:runs/chain-3/cpu-rt-fptn/fptn.safetensors > $RUNS/v0.2.0/fptn.safetensors
}

# Surveillance-like inputs (train/degrade.py `cctv`): low light, Gaussian / motion / defocus blur, sensor noise, a
# video codec (H.264 I/P-frames, MPEG-4, MJPEG) or JPEG; occluders on a fifth of the faces, a new background on a
# fifth of the labelled ones. No mirroring anywhere (300W's x labels are not mirror-symmetric: MODEL_CARD.md).
CCTV="--degrade cctv --blur-prob 0.3 --noise-prob 0.5 --jpeg-prob 0.7 --light-prob 0.3 --occlude-prob 0.2 --composite-prob 0.2"
MILD="--aug-angle 10 --aug-scale 0.05 --aug-shift 0.03 --aug-box-jitter 0.04 --no-aug-flip"
VAL="--val-widths 16 24 32 64"
UNLABELLED=$DATA/unlabelled
TEACHER=$RUNS/teacher

# 1. Teacher labels: dlib's 68 points on each unlabelled photo at full resolution (upscaled to a ~200 px face),
#    300W layout in $TEACHER. Not logged as a step: it is cheap to check and the folder is not kept in git, so a
#    fresh clone labels again (deterministic: the same labels).
[ -f $TEACHER/finished ] || python -m train.label faces $UNLABELLED/utkface $UNLABELLED/celeba --out $TEACHER --processes $THREADS
[ -f $RUNS/v0.2.0/fptn.safetensors ] || from_history

# 2. cpu-small (the ladder's small-face rung) from scratch: 300W + teacher-labelled faces half and half, inputs
#    degraded to 10-40 px faces.
step small-dhln python -m train dhln --preset cpu-small --data $DATA/300w_train --teacher $TEACHER --steps 6000 \
    --batch-size 32 --lr 2e-3 --warmup 200 --eval-every 500 --ckpt-every 250 --log-every 50 $VAL --no-aug-flip \
    $CCTV --min-face-width 10 --max-face-width 40 --threads $THREADS --seed 41 --out $RUNS/cpu-small-dhln --resume

# 3. Fine-tune with frozen BatchNorm, mild augmentation and weight averaging (v0.2.0's step 2 recipe), distilled
#    from v0.2.0's cpu-rt (its decoded landmarks on each input, a second target beside the labels): at step 4,000
#    of step 2 cpu-small was 1.4 points behind cpu-rt at 16 px (docs/results.md).
step small-base python -m train dhln --init $RUNS/cpu-small-dhln/last.safetensors --data $DATA/300w_train \
    --teacher $TEACHER --steps 1500 --batch-size 32 --lr 2e-4 --warmup 50 --eval-every 500 --ckpt-every 250 \
    --log-every 50 $VAL --freeze-bn $MILD $CCTV --min-face-width 10 --max-face-width 40 --ema-decay 0.998 \
    --distill $RUNS/v0.2.0/cpu-rt.safetensors --distill-weight 1 --threads $THREADS --seed 43 \
    --out $RUNS/cpu-small-base --resume
cp $RUNS/cpu-small-base/last.safetensors $ASSETS/shtrack-cpu-small.safetensors

# 4. The ablation, from v0.2.0's cpu-rt, every arm 800 steps with the same rate, schedule and degradations: control
#    (300W only), teacher (+ the teacher-labelled faces), SHT-i (+ image pairs of the 22,000 unlabelled photos),
#    SHT-v (+ video pairs of all 52 training clips), teacher-sht (teacher faces as labelled pairs + both kinds of
#    unlabelled pairs), control-2 (the control's seed + 1: training noise). The arm with the lowest held-out NME at
#    16 px is chosen.
step ablation python -m benchmarks.ablation --init $RUNS/v0.2.0/cpu-rt.safetensors \
    --fptn-init $RUNS/v0.2.0/fptn.safetensors --runs $RUNS/ablation --steps 800 --batch-size 16 --lr 1e-4 \
    --threads $THREADS --arms control teacher sht-i sht-v teacher-sht control-2 --teacher $TEACHER \
    --videos $DATA/videos,$UNLABELLED/videos --images $UNLABELLED/utkface,$UNLABELLED/celeba \
    --ship $RUNS/ablation/chosen.safetensors --train-args --no-aug-flip $CCTV

# 4b. The chosen arm polished (frozen BatchNorm, mild augmentation, weight averaging) and shipped as cpu-rt.
step polish python -m train dhln --init $RUNS/ablation/chosen.safetensors --data $DATA/300w_train \
    --teacher $TEACHER --steps 500 --batch-size 32 --lr 1e-4 --warmup 20 --eval-every 250 --ckpt-every 100 \
    --log-every 50 $VAL --freeze-bn $MILD $CCTV --ema-decay 0.998 --threads $THREADS --seed 29 \
    --out $RUNS/cpu-rt-polish --resume
cp $RUNS/cpu-rt-polish/last.safetensors $ASSETS/shtrack-cpu-rt.safetensors

# 5. The ONNX files the tracker runs without torch (heatmaps only, tagged with their source's sha256) and the int8
#    exports (calibrated on 200 training-split faces; deterministic), made right after each model is shipped.
export_model() {
    shtrack export --weights $ASSETS/shtrack-$1.safetensors --onnx $ASSETS/shtrack-$1.onnx --heatmaps-only \
        --int8 $ASSETS/shtrack-$1-int8.onnx --calibration-data $DATA/300w_train
}
step export-cpu-small export_model cpu-small
step export-cpu-rt export_model cpu-rt

# 6. cpu-fast (one stack) from the shipped cpu-rt's stem and first stack, frozen BatchNorm, mild augmentation.
step cpu-fast python -m train dhln --preset cpu-fast --init $ASSETS/shtrack-cpu-rt.safetensors --init-partial \
    --data $DATA/300w_train --teacher $TEACHER --steps 3000 --batch-size 32 --lr 4e-4 --warmup 50 --eval-every 500 \
    --ckpt-every 250 --log-every 50 $VAL --freeze-bn $MILD $CCTV --ema-decay 0.998 --threads $THREADS --seed 11 \
    --out $RUNS/cpu-fast --resume
cp $RUNS/cpu-fast/last.safetensors $ASSETS/shtrack-cpu-fast.safetensors
step export-cpu-fast export_model cpu-fast
