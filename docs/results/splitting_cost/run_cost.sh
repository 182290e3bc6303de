#!/bin/bash
# Issue 38's cost bar and CelebA bar: 4343481's configs against today's, one benchmark run.
set -e
D=${DATA:?an absolute path to the shared data}
FACES="--data.root $D --data.indices '[4, 7, 8, 12]' --data.num_images 4"
DIGITS="--data.root $D --data.indices '[243, 2380, 2572, 2644, 2913, 3293, 3844, 4565, 4782, 4828, 5003, 5505, 7814, 8363, 8823, 9126]' --data.num_images 16"
rows=()
for f in 0.1 0.3; do
  rows+=(--row "4343481 celeba_cs_netgd f=$f :: @${BASE:?a git worktree of 4343481} --config configs/celeba_cs_netgd.yaml $FACES --model.operator.ratio $f")
  rows+=(--row "now celeba_cs_netgd f=$f :: --config configs/celeba_cs_netgd.yaml $FACES --model.operator.ratio $f")
  rows+=(--row "4343481 celeba_cs_tv f=$f :: @${BASE:?a git worktree of 4343481} --config configs/celeba_cs_tv.yaml $FACES --model.operator.ratio $f")
done
for f in 0.1 0.25 0.5; do
  rows+=(--row "4343481 mnist_cs_netgd f=$f :: @${BASE:?a git worktree of 4343481} --config configs/mnist_cs_netgd.yaml $DIGITS --model.operator.ratio $f")
  rows+=(--row "now mnist_cs_netgd f=$f :: --config configs/mnist_cs_netgd.yaml $DIGITS --model.operator.ratio $f")
done
python scripts/bench/benchmark.py --end-to-end --out docs/results/splitting_cost/cost_vs_4343481.json "${rows[@]}"
