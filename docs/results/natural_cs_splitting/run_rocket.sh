#!/bin/bash
# Issue 38's photograph bar: rocket (never used for a choice), 256x256 RGB, natural_cs_dip (Net-GD + TV step) and TV.
set -e
rows=()
for f in 0.1 0.25; do
  rows+=(--row "natural_cs_dip rocket f=$f :: --config configs/natural_cs_dip.yaml --data.images [rocket] --model.operator.ratio $f")
  rows+=(--row "natural_cs_tv rocket f=$f :: --config configs/natural_cs_tv.yaml --data.images [rocket] --model.operator.ratio $f")
done
python scripts/bench/benchmark.py --end-to-end --out docs/results/natural_cs_splitting/rocket_256.json "${rows[@]}"
