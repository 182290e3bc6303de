"""Time and memory of the measurement operators alone: one A x and one A^T r on a batch of images, per size.

Example (``docs/results/large/operators.md``)::

    python scripts/bench/operator_benchmark.py --out docs/results/large/operators.md

Every (operator, image size, f) row builds the operator in a fresh process (so its peak resident memory is its
own), then times ``--repeats`` calls of ``A`` followed by ``A_adjoint`` on ``--batch`` float32 images, the pair a
fitting step makes per iteration (Net-GD's loss and its gradient), after one warm-up call. A row whose dense
matrix would need more than ``--max-matrix-gb`` is not built (its size is printed). Prints a markdown table and
writes it to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import torch

OPERATORS = {
    "dense Gaussian (float64 products)": "CompressiveSensing",
    "structured (sign, DCT, subset)": "StructuredCompressiveSensing",
    "coded diffraction, L = 2": "CodedDiffraction",
}
ROWS = [  # (operator label, C, side, f)
    *[(label, 3, side, ratio) for side, ratio in [(64, 0.1), (64, 0.3), (128, 0.1), (256, 0.1), (512, 0.25)]
      for label in list(OPERATORS)[:2]],
    *[("coded diffraction, L = 2", 1, side, 2.0) for side in (256, 512)],
]


def measure(label: str, channels: int, side: int, ratio: float, batch: int, repeats: int) -> dict:
    from dip_lightning import operators

    shape = (channels, side, side)
    kind = getattr(operators, OPERATORS[label])
    started = time.perf_counter()
    operator = kind(shape, masks=2) if kind is operators.CodedDiffraction else kind(shape, ratio=ratio)
    built = time.perf_counter() - started
    x = torch.rand(batch, *shape)
    operator.A_adjoint(operator.A(x))  # warm-up
    started = time.perf_counter()
    for _ in range(repeats):
        operator.A_adjoint(operator.A(x))
    seconds = (time.perf_counter() - started) / repeats
    stored = sum(t.numel() * t.element_size() for t in [*operator.buffers(), *operator.parameters()])
    return {"operator": label, "shape": shape, "ratio": ratio, "m": operator.m, "batch": batch,
            "ms_per_pair": seconds * 1e3, "build_seconds": built, "operator_mb": stored / 2**20,
            "peak_memory_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=4, help="images per call (e.g. 4 faces, or 1 photo x 4 restarts)")
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--max-matrix-gb", type=float, default=4.0)
    parser.add_argument("--out", default="runs/operators.md")
    parser.add_argument("--single", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.single:
        label, channels, side, ratio = json.loads(args.single)
        print(json.dumps(measure(label, channels, side, ratio, args.batch, args.repeats)))
        return

    lines = [f"A x then A^T r on {args.batch} float32 images per call, mean of {args.repeats} calls, "
             f"{torch.get_num_threads()} CPU threads", "",
             "| operator | image | f | m | ms per A + A^T | operator memory (MB) | build (s) | peak process memory (MB) |",
             "|---|---|---|---|---|---|---|---|"]
    for label, channels, side, ratio in ROWS:
        n = channels * side * side
        name = f"{channels}x{side}x{side}"
        matrix_gb = round(ratio * n) * n * 8 / 2**30
        if OPERATORS[label] == "CompressiveSensing" and matrix_gb > args.max_matrix_gb:
            lines.append(f"| {label} | {name} | {ratio:g} | {round(ratio * n)} | not built: the matrix alone is "
                         f"{matrix_gb:,.1f} GB | | | |")
            print(lines[-1], flush=True)
            continue
        command = [sys.executable, __file__, "--batch", str(args.batch), "--repeats", str(args.repeats),
                   "--single", json.dumps([label, channels, side, ratio])]
        result = json.loads(subprocess.run(command, capture_output=True, text=True, check=True).stdout.splitlines()[-1])
        lines.append(f"| {label} | {name} | {ratio:g} | {result['m']} | {result['ms_per_pair']:.2f} | "
                     f"{result['operator_mb']:.2f} | {result['build_seconds']:.2f} | {result['peak_memory_mb']:.0f} |")
        print(lines[-1], flush=True)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines) + "\n")
    print(f"written to {out}")


if __name__ == "__main__":
    main()
