#!/usr/bin/env bash
# One command for a lent GPU: the speed tables on CUDA and all 10,000 MNIST test digits with the fast config.
#
#   bash scripts/gpu_check.sh                 # on a GPU machine; writes docs/results/gpu/ (about 6-8 minutes)
#   SMOKE=1 bash scripts/gpu_check.sh         # the same steps, tiny, on the CPU (checks the plumbing)
#
# Needs the project installed (README) and the data under DATA (default ../shared/data).
# Writes docs/results/gpu/{end_to_end.json,end_to_end.md,mnist_10000.json,device.txt}.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA="$(realpath "${DATA:-../shared/data}")"
OUT="${OUT:-docs/results/gpu}"
export WANDB_SILENT=true PYTHONWARNINGS=ignore
mkdir -p "$OUT"

if [ "${SMOKE:-0}" = 1 ]; then
    ACCEL=cpu; ITER="--model.iterations 20"; DIGITS=8; ALL=24; CHUNKS="8 16"; OUT="$(mktemp -d)"
else
    python -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 'no CUDA device: use SMOKE=1 for the CPU check')"
    ACCEL=gpu; ITER=""; DIGITS=16; ALL=10000; CHUNKS="1024 4096"
fi
python -c "import torch; print(torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'cpu', torch.__version__)" \
    | tee "$OUT/device.txt"

D16="$(python -c "import random; print(sorted(random.Random(2026).sample(range(10000), $DIGITS)))")"
COMMON="--data.root $DATA --trainer.accelerator $ACCEL $ITER"
rows=(
  --row "mnist_cs_netgd, reproducible (float64 products), eager :: --config configs/mnist_cs_netgd.yaml $COMMON --data.indices '$D16'"
  --row "mnist_cs_netgd, reproducible, compiled :: --config configs/mnist_cs_netgd.yaml $COMMON --data.indices '$D16' --model.compile true"
  --row "mnist_cs_netgd, TF32 (high), compiled :: --config configs/mnist_cs_netgd.yaml $COMMON --data.indices '$D16' --model.compile true --float32_matmul_precision high"
  --row "celeba_cs_netgd, reproducible, eager :: --config configs/celeba_cs_netgd.yaml $COMMON"
  --row "celeba_cs_netgd, bfloat16 (medium), compiled :: --config configs/celeba_cs_netgd.yaml $COMMON --model.compile true --float32_matmul_precision medium"
)
for chunk in $CHUNKS; do
  rows+=(--row "mnist_cs_netgd_fast, chunk $chunk, $chunk digits :: --config configs/mnist_cs_netgd_fast.yaml $COMMON --data.num_images $chunk --data.chunk_size $chunk")
done
python scripts/benchmark.py --end-to-end --out "$OUT/end_to_end.json" "${rows[@]}"

# every test digit, one dip-lightning fit, the fast config (the 60-second goal on one H100)
CHUNK=$([ "${SMOKE:-0}" = 1 ] && echo 8 || echo 5000)
python scripts/benchmark.py --end-to-end --out "$OUT/mnist_10000.json" \
  --row "mnist_cs_netgd_fast, f=0.25, $ALL test digits :: --config configs/mnist_cs_netgd_fast.yaml $COMMON --data.num_images $ALL --data.chunk_size $CHUNK"
echo "written to $OUT/"
