#!/usr/bin/env bash
# One command for a lent GPU: all 10,000 MNIST test digits with the fast config, then the speed tables on CUDA.
#
#   bash scripts/bench/gpu_check.sh                 # on a GPU machine; writes docs/results/gpu/ (at most BUDGET s, default 500)
#   SMOKE=1 bash scripts/bench/gpu_check.sh         # the same steps, tiny, on the CPU (checks the plumbing; writes
#                                             # runs/gpu_check_smoke/, never the committed GPU tables)
#
# Needs the project importable (README's install, or PYTHONPATH) and the data under DATA (default ../shared/data).
# Writes OUT (default docs/results/gpu)/{device.txt, mnist_10000.json/.md, end_to_end.json/.md, test_cuda.txt,
# profile_mnist_cs_netgd_fast_10000.txt}. The runs come in
# order of importance and share BUDGET seconds: a run still going when its share is spent is stopped and
# recorded as such, later ones are skipped, and every table is rewritten after each run, so a cut-short
# check keeps what it measured.
set -uo pipefail
cd "$(dirname "$0")/.."
DATA="$(realpath "${DATA:-../shared/data}")"
if [ "${SMOKE:-0}" = 1 ]; then OUT="${OUT:-runs/gpu_check_smoke}"; else OUT="${OUT:-docs/results/gpu}"; fi
BUDGET="${BUDGET:-500}"
export WANDB_SILENT=true PYTHONWARNINGS=ignore PYTHONUNBUFFERED=1
mkdir -p "$OUT"

if [ "${SMOKE:-0}" = 1 ]; then
    ACCEL=cpu; ITER="--model.iterations 20"; REF_ITER="--iterations 20"; DIGITS=8; ALL=24; CHUNK_ALL=24
    CHUNKS="8 16"; REF_DEVICE=cpu
else
    python -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 'no CUDA device: use SMOKE=1 for the CPU check')" || exit 1
    ACCEL=gpu; ITER=""; REF_ITER=""; DIGITS=16; ALL=10000; CHUNK_ALL=10000; CHUNKS="1024 4096"; REF_DEVICE=cuda
fi
{
    python -c "import torch, platform; print('device:', torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'cpu', '| torch', torch.__version__, '| python', platform.python_version())"
    command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv,noheader
    date -u +"%Y-%m-%d %H:%M UTC"
} | tee "$OUT/device.txt"
python -c "import dip_lightning.cli" || { echo "dip_lightning does not import"; exit 1; }

COMMON="--data.root $DATA --trainer.accelerator $ACCEL $ITER"
# a short run first: shows a broken setup at once; without a working wandb the tables are made without W&B
preflight() { python -m dip_lightning.cli fit --config configs/mnist_cs_netgd_fast.yaml $COMMON --data.num_images 8 \
    --data.chunk_size 8 --model.iterations 5 --model.compile false --trainer.enable_progress_bar false \
    --trainer.default_root_dir "$(mktemp -d)" "$@" >/tmp/preflight.log 2>&1; }
if ! preflight; then
    tail -5 /tmp/preflight.log
    if preflight --trainer.logger false; then
        echo "W&B does not work here: the runs below log nothing to W&B (--trainer.logger false)" | tee -a "$OUT/device.txt"
        COMMON="$COMMON --trainer.logger false"
    else
        tail -20 /tmp/preflight.log; exit 1
    fi
fi
START=$SECONDS
left() { echo $(( BUDGET - (SECONDS - START) )); }

# 1. every test digit, one dip-lightning fit, the fast config (the goal: under 60 s on one H100, mean nMSE <= 0.025)
python scripts/bench/benchmark.py --end-to-end --out "$OUT/mnist_10000.json" --budget $(( $(left) < 180 ? $(left) : 180 )) \
  --row "mnist_cs_netgd_fast, f=0.25, all $ALL test digits, chunk $CHUNK_ALL :: --config configs/mnist_cs_netgd_fast.yaml $COMMON --data.num_images $ALL --data.chunk_size $CHUNK_ALL"

# 2. the frontier on this device: the reference loop, the fast config by chunk size, compile and precision modes
#    (most wanted first: a short BUDGET skips the last rows, which repeat the quality config compiled)
D16="--data.random $DIGITS --data.seed 2026"  # the datamodule's draw (numpy default_rng), the same everywhere
D4="$(python -c "from dip_lightning.data.base import random_selection as r; print(*r(range(10000), 4, 2026))")"
rows=(--row "authors' loop (one digit at a time, 5000 it), 4 test digits :: reference_loop --data-root $DATA --indices $D4 --device $REF_DEVICE $REF_ITER")
for chunk in $CHUNKS; do
  rows+=(--row "mnist_cs_netgd_fast, f=0.25, $chunk digits, chunk $chunk :: --config configs/mnist_cs_netgd_fast.yaml $COMMON --data.num_images $chunk --data.chunk_size $chunk")
done
last=${CHUNKS##* }
rows+=(
  --row "mnist_cs_netgd_fast, f=0.25, $last digits, chunk $last, CUDA graphs (compile reduce-overhead) :: --config configs/mnist_cs_netgd_fast.yaml $COMMON --data.num_images $last --data.chunk_size $last --model.compile reduce-overhead"
  --row "mnist_cs_netgd (quality), f=0.25, 16 test digits, reproducible (float64 products), eager :: --config configs/mnist_cs_netgd.yaml $COMMON $D16"
  --row "celeba_cs_netgd (quality), f=0.1, 4 faces, reproducible, eager :: --config configs/celeba_cs_netgd.yaml $COMMON --float32_matmul_precision highest"
  --row "celeba_cs_netgd_fast, f=0.1, 64 faces, bf16 products, compiled :: --config configs/celeba_cs_netgd_fast.yaml $COMMON"
  --row "mnist_cs_netgd (quality), reproducible, compiled :: --config configs/mnist_cs_netgd.yaml $COMMON $D16 --model.compile true"
  --row "mnist_cs_netgd (quality), TF32 products (high), compiled :: --config configs/mnist_cs_netgd.yaml $COMMON $D16 --model.compile true --float32_matmul_precision high"
)
python scripts/bench/benchmark.py --end-to-end --out "$OUT/end_to_end.json" --budget "$(left)" "${rows[@]}"

# 3. the CUDA tests (the CPU's guarantees on the GPU) and where one step of the 10,000-digit chunk spends its time
DIP_LIGHTNING_DATA="$DATA" timeout 120 python -m pytest tests/test_cuda.py -q -p no:cacheprovider 2>&1 | tail -3 | tee "$OUT/test_cuda.txt"
[ "${SMOKE:-0}" = 1 ] || timeout 90 python scripts/bench/profile_step.py --config configs/mnist_cs_netgd_fast.yaml --data-root "$DATA" \
    --steps 50 --warmup 20 --rows 15 --data.chunk_size $CHUNK_ALL --data.num_images $CHUNK_ALL > "$OUT/profile_mnist_cs_netgd_fast_$CHUNK_ALL.txt" 2>/dev/null
echo "written to $OUT/ in $(( SECONDS - START )) s"
