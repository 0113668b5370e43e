#!/usr/bin/env bash
# The v0.2.0 chain (the files shipped in v0.2.0; its third run, RUNS=runs/chain-3): from nothing to DHLN with the paper's fusion (Eq. 1-2), the SHT ablation, the best arm
# polished and shipped as cpu-rt, cpu-fast from it, ONNX and int8 exports. Run from the repo root with
# ../shared/data beside it and `pip install -e ".[train,peers]"`; CPU only. The model card gives the wall time
# of each step.
#
# Run it again after an interruption: every training step continues from its last checkpoint (--resume, at most
# --ckpt-every steps lost, then the same batches and schedule as if never stopped: the same weights, bit for bit,
# as an uninterrupted run on the same thread count; tests/test_train.py). A step that $RUNS/chain.log records as
# finished is skipped, so a finished step's folder needs only the files later steps read (step 2's
# last.safetensors, step 3's fptn.safetensors, ...), not its optimiser state; delete its log line to run it again.
# Long: on a 2-core CPU, steps 1-4 take many hours; run it in the background, e.g.
#     setsid nice -n 19 bash train/make_default_weights.sh >> runs/chain/chain.out 2>&1 &
#     echo 19 > /proc/$!/autogroup      # setsid makes a new scheduler autogroup; nice alone acts only inside it
# and pause / continue it (e.g. while timing something) with kill -STOP / -CONT -- -$PID (its process group).
source "$(dirname "${BASH_SOURCE[0]}")/chain_common.sh"   # DATA, RUNS, ASSETS, THREADS, LOG, step

# Mild augmentation of the fine-tunes (the tracker's crops are upright landmark boxes from the last frame);
# no mirroring anywhere (300W's x labels are not mirror-symmetric: MODEL_CARD.md).
MILD="--aug-angle 10 --aug-scale 0.05 --aug-shift 0.03 --aug-box-jitter 0.04 --no-aug-flip"
VAL="--val-widths 16 24 32 64"

# 1. DHLN cpu-rt from scratch on the human-labelled 300W faces (196 held out), the paper's augmentation without
#    mirroring, inputs degraded to 12-64 px faces.
step dhln python -m train dhln --preset cpu-rt --data $DATA/300w_train --steps 8000 --batch-size 32 --lr 2e-3 \
    --warmup 200 --eval-every 500 --ckpt-every 250 --log-every 50 $VAL --no-aug-flip --threads $THREADS --seed 1 \
    --out $RUNS/cpu-rt-dhln --resume

# 2. Fine-tune with frozen BatchNorm, mild augmentation and weight averaging: the base of every SHT arm.
step base python -m train dhln --init $RUNS/cpu-rt-dhln/last.safetensors --data $DATA/300w_train --steps 2000 \
    --batch-size 32 --lr 2e-4 --warmup 50 --eval-every 500 --ckpt-every 250 --log-every 50 $VAL --freeze-bn \
    $MILD --ema-decay 0.998 --threads $THREADS --seed 19 --out $RUNS/cpu-rt-base --resume

# 3. FPTN pretrained on true heatmaps and HR faces of 300W rotation/scale pairs (paper augmentation, no mirroring).
#    1200 steps: after 300 its target-pose output was 0.4 dB closer to the true target face than the unmoved
#    source, after 1200 1.8 dB (benchmarks/results/transfer_probe_fptn1200.json), so the transfer L1 has a pose
#    to carry back to DHLN.
step fptn python -m train fptn --preset cpu-rt --data $DATA/300w_train --steps 1200 --batch-size 16 --lr 2e-4 \
    --fptn-channels 32 --fptn-blocks 4 --ckpt-every 100 --log-every 25 --no-aug-flip --threads $THREADS --seed 3 \
    --out $RUNS/cpu-rt-fptn --resume

# 4. The ablation: control / SHT / SHT-v / SHT-i and control-2 (the control with another seed: the yardstick of
#    training noise), 600 steps each from step 2 (benchmarks/ablation.py), the
#    paper's rotation/scale pairs without mirroring; the arm with the lowest held-out NME at 16 px is chosen.
step ablation python -m benchmarks.ablation --init $RUNS/cpu-rt-base/last.safetensors \
    --fptn-init $RUNS/cpu-rt-fptn/fptn.safetensors --runs $RUNS/ablation --steps 600 --batch-size 16 --lr 1e-4 \
    --threads $THREADS --ship $RUNS/ablation/chosen.safetensors --train-args --no-aug-flip

# 4b. The chosen arm, polished like step 2 and shipped as cpu-rt: every arm trains with the paper's wide
#     rotation/scale augmentation and without weight averaging, which costs on the tracker's upright crops
#     (the control arm ended behind its start); 500 steps of step 2's recipe take that back.
step polish python -m train dhln --init $RUNS/ablation/chosen.safetensors --data $DATA/300w_train --steps 500 \
    --batch-size 32 --lr 1e-4 --warmup 20 --eval-every 250 --ckpt-every 100 --log-every 50 $VAL --freeze-bn \
    $MILD --ema-decay 0.998 --threads $THREADS --seed 29 --out $RUNS/cpu-rt-polish --resume
cp $RUNS/cpu-rt-polish/last.safetensors $ASSETS/shtrack-cpu-rt.safetensors

# 5. The ONNX files the tracker runs without torch (heatmaps only, tagged with their source's sha256) and the
#    int8 export (7-bit per-channel weights, uint8 activations calibrated on 200 training-split faces;
#    deterministic), made right after each model is shipped so the shipped files always agree.
export_model() {
    shtrack export --weights $ASSETS/shtrack-$1.safetensors --onnx $ASSETS/shtrack-$1.onnx --heatmaps-only \
        --int8 $ASSETS/shtrack-$1-int8.onnx --calibration-data $DATA/300w_train
}
step export-cpu-rt export_model cpu-rt

# 6. cpu-fast (one stack) from the shipped cpu-rt's stem and first stack, frozen BatchNorm, mild augmentation.
step cpu-fast python -m train dhln --preset cpu-fast --init $ASSETS/shtrack-cpu-rt.safetensors --init-partial \
    --data $DATA/300w_train --steps 4000 --batch-size 32 --lr 4e-4 --warmup 50 --eval-every 500 --ckpt-every 250 \
    --log-every 50 $VAL --freeze-bn $MILD --ema-decay 0.998 --threads $THREADS --seed 11 --out $RUNS/cpu-fast --resume
cp $RUNS/cpu-fast/last.safetensors $ASSETS/shtrack-cpu-fast.safetensors
step export-cpu-fast export_model cpu-fast
