#!/bin/bash
set -e
D=${DATA:?an absolute path to the shared data}
FACES="--data.root $D --data.indices '[4, 7, 8, 12]' --data.num_images 4"
rows=()
for f in 0.1 0.3; do
  rows+=(--row "4343481 celeba_cs_netgd f=$f :: @${BASE:?a git worktree of 4343481} --config configs/celeba_cs_netgd.yaml $FACES --model.operator.ratio $f")
  rows+=(--row "now celeba_cs_netgd f=$f :: --config configs/celeba_cs_netgd.yaml $FACES --model.operator.ratio $f")
done
python scripts/bench/benchmark.py --end-to-end --out docs/results/splitting_cost/celeba_cost_vs_4343481.json "${rows[@]}"
