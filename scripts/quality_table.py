"""Run configs on chosen images through the real CLI and print a markdown table of the results.

Example::

    python scripts/quality_table.py --configs configs/mnist_cpr_netgd.yaml \
        configs/mnist_cpr_netgd.yaml+configs/mnist_cpr_netpgd.yaml --ratios 0.3 0.5 --random 16 --seed 2045 \
        --data-root ../shared/data --out runs/quality

Each (config, ratio) is one ``dip-lightning fit`` run with the config's default budget; the
table lists mean, median and worst nMSE, the number of images above nMSE 0.1 (failed), the
number flagged ``suspect`` (and in brackets how many of the failed ones), mean PSNR/SSIM and the
wall time of the run, read back from its ``summary.json`` and ``results.csv``.

A config given as ``a.yaml+b.yaml`` is ``--config a.yaml --config b.yaml`` (b overrides a, e.g. the Net-PGD
phase-retrieval config on top of the Net-GD one). ``--random N --seed S`` reconstructs N random images of the
config's dataset (``--data.random N --data.seed S``: the datamodule's draw), instead of ``--indices``.
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--configs", nargs="+", required=True)
    parser.add_argument("--ratios", nargs="+", type=float, required=True)
    parser.add_argument("--indices", help='e.g. "[0, 1, 2]"; default: the config\'s selection')
    parser.add_argument("--random", type=int, default=None, help="this many random images (see --seed)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random images")
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--out", default="runs/quality")
    parser.add_argument("extra", nargs="*", help="further CLI overrides, after --")
    args = parser.parse_args()

    lines = ["| config | f | images | nMSE mean | nMSE median | worst | above 0.1 | suspect (of them) | PSNR (dB) | SSIM "
             "| wall (s) |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for config in args.configs:
        for ratio in args.ratios:
            name = "+".join(Path(part).stem for part in config.split("+"))
            out = Path(args.out) / f"{name}_f{ratio:g}"
            stacked = [word for part in config.split("+") for word in ("--config", part)]
            command = [sys.executable, "-m", "dip_lightning.cli", "fit", *stacked, "--model.operator.ratio", str(ratio), "--trainer.default_root_dir", str(out),
                       "--trainer.logger", "false", "--trainer.enable_progress_bar", "false"]
            if args.random:
                command += ["--data.random", str(args.random), "--data.seed", str(args.seed)]
            elif args.indices:
                # every listed image, whatever num_images the config keeps
                command += ["--data.indices", args.indices, "--data.num_images", str(len(json.loads(args.indices)))]
            if args.data_root:
                command += ["--data.root", args.data_root]
            started = time.perf_counter()
            done = subprocess.run(command + args.extra, capture_output=True, text=True)
            if done.returncode != 0:
                sys.exit(f"{' '.join(command)} failed:\n{done.stderr[-2000:]}")
            s = json.loads((out / "summary.json").read_text())
            with open(out / "results.csv", newline="") as handle:
                rows = list(csv.DictReader(handle))
            failed = [r for r in rows if float(r["nmse"]) > 0.1]
            flagged = sum(r["status"] == "suspect" for r in failed)
            line = (f"| {name} | {ratio:g} | {s['num_images']} | {s['nmse_mean']:.4f} | "
                    f"{s['nmse_median']:.4f} | {max(float(r['nmse']) for r in rows):.4f} | {len(failed)} | "
                    f"{s.get('num_suspect', 0)} ({flagged}) | {s['psnr_mean']:.2f} | {s['ssim_mean']:.3f} | "
                    f"{time.perf_counter() - started:.0f} |")
            print(line, flush=True)
            lines.append(line)
    print("\n" + "\n".join(lines))


if __name__ == "__main__":
    main()
