#!/usr/bin/env bash
# The prepared check of the CUDA path on one GPU (an H100/H200: about 8 minutes), as one
# script so that a short loan of a GPU machine is spent measuring, not typing:
#
#   1. the CUDA tests: two streams vs one to a stated tolerance, the sync-free step (under
#      torch.cuda.set_sync_debug_mode("error")), fp16 loss scales across a resume, compile,
#      channels_last, the device-resident feed, the loop's collectives over NCCL (one rank);
#   2. scripts/bench_step.py: DCGAN and StyleGAN2 (+R1 +path length) at 32/64/128 px with
#      streams off/2, channels_last, bf16, tf32, fp16, then compile and CUDA graphs at 64 px,
#      with the issue's targets as ratios measured side by side (and a profile where missed);
#   3. the default experiment (DCGAN on Fashion-MNIST, 100 kimg): sec/kimg and FID;
#   4. gan-eval's Inception throughput (img/s), with random stand-in weights built here (the
#      machine reaches no network; the report names the weights and their sha256).
#
# It writes report.md (a Markdown report naming the device), logs.txt (every step's output)
# and, from the benchmark, bench.md into --out DIR (default outputs/device_check/).
#
#   scripts/device_check.sh [--out DIR] [--data DIR]    # on the GPU machine
#   scripts/device_check.sh --dry-run [--out DIR]       # the same steps, CPU, toy sizes
#
# --data: a folder with Fashion-MNIST's IDX files (default: $GAN_RUNNER_FMNIST, Debian's
# /usr/share/datasets/fashion-mnist, or .device/fashion-mnist in this tree, which travels with
# it when carried). The Python is $PYTHON, else .venv/bin/python, else python3. Where that one
# lacks hydra-core/omegaconf (a GPU image often does), wheels in .whl/ are installed for the
# run, e.g. made with `pip download --no-deps -d .whl hydra-core==1.3.8 omegaconf==2.3.1
# antlr4-python3-runtime==4.9.3`; the project itself is installed for the run if needed.
# The dry run leaves out compile (minutes of C++ compilation on a small CPU).
set -uo pipefail

usage() { awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$0"; }
OUT=outputs/device_check
DATA=""
DRY=0
while [ $# -gt 0 ]; do
    case "$1" in
        --dry-run) DRY=1 ;;
        --out) OUT="$2"; shift ;;
        --data) DATA="$2"; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "device_check.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT" || exit 2
mkdir -p "$OUT" && OUT=$(cd "$OUT" && pwd)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/device_check.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
PY=${PYTHON:-$([ -x .venv/bin/python ] && echo "$ROOT/.venv/bin/python" || echo python3)}
export PYTHONUNBUFFERED=1
: >"$WORK/steps.tsv"
: >"$OUT/logs.txt"

# step NAME SECONDS COMMAND...: run with a time cap, output to logs.txt, status and ms to
# steps.tsv
step() {
    local name=$1 cap=$2 start status
    shift 2
    start=$(date +%s%N)
    echo "=== $name: $*" | tee -a "$OUT/logs.txt"
    timeout --kill-after=10 "$cap" "$@" >"$WORK/$name.log" 2>&1
    case $? in
        0) status=ok ;;
        124|137) status="timed out after ${cap} s" ;;
        *) status=failed ;;
    esac
    cat "$WORK/$name.log" >>"$OUT/logs.txt"
    printf '%s\t%s\t%d\n' "$name" "$status" $(( ($(date +%s%N) - start) / 1000000 )) \
        >>"$WORK/steps.tsv"
    echo "=== $name: $status" | tee -a "$OUT/logs.txt"
}

# ---------------------------------------------------------------- the Python environment
if ! "$PY" -c "import hydra, omegaconf" 2>/dev/null; then
    if ! ls .whl/*.whl >/dev/null 2>&1; then
        echo "device_check.sh: $PY lacks hydra-core/omegaconf and .whl/ holds no wheels (--help)" >&2
        exit 2
    fi
    "$PY" -m pip install -q --no-index --no-deps --target "$WORK/site" .whl/*.whl || exit 2
    export PYTHONPATH="$WORK/site${PYTHONPATH:+:$PYTHONPATH}"
fi
if ! "$PY" -c "import gan_runner.conf" 2>/dev/null; then  # conf/ ships as gan_runner.conf
    "$PY" -m pip install -q --no-index --no-deps --no-build-isolation --target "$WORK/site" . \
        || exit 2
    export PYTHONPATH="$WORK/site${PYTHONPATH:+:$PYTHONPATH}"
fi

if [ -z "$DATA" ]; then
    for candidate in "${GAN_RUNNER_FMNIST:-}" /usr/share/datasets/fashion-mnist \
            .device/fashion-mnist; do
        if [ -n "$candidate" ] && [ -d "$candidate" ]; then DATA=$candidate; break; fi
    done
fi
if [ -z "$DATA" ] || [ ! -d "$DATA" ]; then
    echo "device_check.sh: no Fashion-MNIST folder; pass --data DIR (--help)" >&2
    exit 2
fi
DATA=$(cd "$DATA" && pwd)
cd "$WORK" || exit 2  # not the tree: its gan_runner/ lacks conf/ unless installed (editable)

# ---------------------------------------------------------------- sizes
if [ $DRY = 1 ]; then
    DEVICE=cpu
    TESTS=(-k "not compile")
    BENCH=(--models dcgan stylegan2_tiny --resolutions 16 --batch 8 --steps 1 --rounds 1
           --options streams=2 channels_last bf16)
    BENCH_COMPILE=()
    TRAIN=(trainer.kimg=0.256 trainer.batch_size=32 model.channels=8 dataset.max_images=1024
           trainer.log_every_kimg=0.064 trainer.snapshot_every_kimg=0.128
           metrics.every_kimg=0.128 metrics.num_fakes=256 metrics.num_reals=512)
    EVAL_FAKES=(16 48) EVAL_REALS=16 EVAL_BATCH=16
    declare -A CAP=([tests]=120 [bench]=120 [train]=120 [eval]=120)
else
    if ! "$PY" -c "import torch, sys; sys.exit(not torch.cuda.is_available())"; then
        echo "device_check.sh: no CUDA GPU visible (use --dry-run on a CPU)" >&2
        exit 2
    fi
    DEVICE=cuda
    TESTS=()
    BENCH=(--models dcgan stylegan2 --resolutions 32 64 128 --batch 32 --steps 10 --rounds 4
           --options streams=2 channels_last bf16 tf32 fp16)
    BENCH_COMPILE=(--models dcgan stylegan2 --resolutions 64 --batch 32 --steps 10 --rounds 3
                   --options compile cuda_graphs)
    TRAIN=()  # the default experiment as it is: 100 kimg, FID and KID at 50 and 100 kimg
    EVAL_FAKES=(2000 12000) EVAL_REALS=2000 EVAL_BATCH=250
    # caps that add up to under 8 minutes (the weights and both evaluations take the eval cap)
    declare -A CAP=([tests]=100 [bench]=140 [bench_compile]=130 [train]=40 [eval]=20)
fi

# ---------------------------------------------------------------- the steps
step tests ${CAP[tests]} env GAN_RUNNER_TEST_DEVICE=$DEVICE "$PY" -m pytest -q -p no:cacheprovider \
    "$ROOT/tests/test_cuda.py" \
    "$ROOT/tests/test_scheduler.py::test_cuda_streams_match_the_sequential_schedule_to_rounding" \
    "${TESTS[@]}"
step bench ${CAP[bench]} "$PY" "$ROOT/scripts/bench_step.py" "${BENCH[@]}" --device $DEVICE --profile \
    --overrides "dataset.root=$DATA" --markdown "$WORK/bench.md"
if [ ${#BENCH_COMPILE[@]} -gt 0 ]; then
    step bench_compile ${CAP[bench_compile]} "$PY" "$ROOT/scripts/bench_step.py" "${BENCH_COMPILE[@]}" \
        --device $DEVICE --profile --overrides "dataset.root=$DATA" --markdown "$WORK/bench_compile.md"
fi
step train ${CAP[train]} "$PY" -m gan_runner.cli.train "dataset.root=$DATA" "trainer.device=$DEVICE" \
    trainer.progress=false trainer.resume=null "hydra.run.dir=$WORK/train" "${TRAIN[@]}"
WEIGHTS=$WORK/inception_random.pth
step weights ${CAP[eval]} "$PY" -m gan_runner.metrics.features.random_weights "$WEIGHTS"
CKPT=$(ls "$WORK"/train/checkpoints/ckpt-*.pt 2>/dev/null | tail -n 1)  # the newest
for fakes in "${EVAL_FAKES[@]}"; do
    # a fresh cache each time, so both runs compute the real features: the difference between
    # the two runs is the Inception work on the extra fakes alone
    mkdir -p "$WORK/eval_$fakes"
    step "eval_$fakes" ${CAP[eval]} env GAN_RUNNER_CACHE="$WORK/eval_$fakes" \
        "$PY" -m gan_runner.cli.evaluate "ckpt=$CKPT" metrics=fid features=inception \
        "inception_weights=$WEIGHTS" "num_fakes=$fakes" "num_reals=$EVAL_REALS" \
        "batch_size=$EVAL_BATCH" "device=$DEVICE" "out=$WORK/eval_$fakes/results.json"
done

cp "$WORK/bench.md" "$OUT/bench.md" 2>/dev/null
"$PY" "$ROOT/scripts/device_report.py" "$WORK" "$OUT/report.md" --device $DEVICE --weights "$WEIGHTS" \
    --data "$DATA" $([ $DRY = 1 ] && echo --dry-run)
echo "report: $OUT/report.md"
! grep -qv $'\tok\t' "$WORK/steps.tsv"
