"""Tune one parameter of a method (per compression ratio) on images that are not evaluation images.

Example (the README's tuning of the TV weight on 8 MNIST *training* digits)::

    python scripts/tune_baseline.py --config configs/mnist_cs_tv.yaml --param weight \
        --values 0.001 0.003 0.01 0.03 --ratios 0.08 0.1 0.15 0.2 0.25 0.3 \
        --data-root ../shared/data --write configs/paper/tuned.yaml -- --data.train true

The TV weight of ``configs/denoise_tv.yaml``, on bundled photographs that are not evaluated::

    python scripts/tune_baseline.py --config configs/denoise_tv.yaml --param options --metric psnr_mean \
        --values "{weight: 0.04}" "{weight: 0.08}" "{weight: 0.12}" --indices "[0, 1]" \
        -- --data.images "[chelsea, rocket]" --data.chunk_size 2

Every (value, ratio) is one ``dip-lightning fit`` run (in this process, through the real CLI) on
``--indices``; the script prints the mean nMSE of each, marks the best value per ratio and,
with ``--write``, records it in a YAML file that ``scripts/reproduce_paper.py`` applies:
``{config stem: {ratio: {param: value}}}`` (other entries of the file are kept).
"""

from __future__ import annotations

import argparse
import math
import shutil
from pathlib import Path

import yaml

from dip_lightning.cli import run_fit


def run(config: str, ratio: float | None, overrides: list[str], out: Path) -> dict:
    """One reconstruction run through the CLI; returns its summary.json."""
    if out.exists():
        shutil.rmtree(out)  # tuning runs are cheap; never resume one with other settings
    at_ratio = [] if ratio is None else ["--model.operator.ratio", str(ratio)]
    return run_fit(config, out, [*at_ratio, *overrides])["summary"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True)
    parser.add_argument("--param", required=True, help="a model argument, e.g. weight or sparsity")
    parser.add_argument("--values", nargs="+", required=True)
    parser.add_argument("--ratios", nargs="+", type=float, default=[None],
                        help="compression ratios (default: the config's measurement, once)")
    parser.add_argument("--metric", default="nmse_mean", choices=["nmse_mean", "nmse_median", "psnr_mean", "ssim_mean"],
                        help="summary value to optimize (nMSE is minimized, PSNR and SSIM maximized)")
    parser.add_argument("--indices", default="[0, 1, 2, 3, 4, 5, 6, 7]",
                        help="the tuning images (default the first 8; pass --data.train true after -- for MNIST)")
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--out", default="runs/tune")
    parser.add_argument("--write", default=None, help="YAML file to record the best value per ratio in")
    parser.add_argument("extra", nargs="*", help="further CLI overrides, after --")
    args = parser.parse_args()

    stem = Path(args.config).stem
    # every listed image, whatever num_images the config keeps
    count = len(yaml.safe_load(args.indices))
    common = ["--data.indices", args.indices, "--data.num_images", str(count),
              *(["--data.root", args.data_root] if args.data_root else []), *args.extra]
    scores: dict[float, dict[str, float]] = {ratio: {} for ratio in args.ratios}
    for ratio in args.ratios:
        for value in args.values:
            label = "" if ratio is None else f"f{ratio:g}_"
            out = Path(args.out) / stem / f"{label}{args.param}{value}".replace(" ", "")
            summary = run(args.config, ratio, [f"--model.{args.param}", value, *common], out)
            scores[ratio][value] = summary[args.metric]
            print(f"{stem} {label}{args.param}={value}: {args.metric} {summary[args.metric]:.4g} "
                  f"on {summary['num_images']} images ({summary['dataset']})", flush=True)

    sign = 1 if args.metric.startswith("nmse") else -1
    lines = [f"| f | {' | '.join(f'{args.param}={v}' for v in args.values)} | best |",
             "|---" * (len(args.values) + 2) + "|"]
    best = {}
    for ratio, by_value in scores.items():
        finite = {v: s for v, s in by_value.items() if math.isfinite(s)}
        best[ratio] = min(finite, key=lambda v: sign * finite[v]) if finite else None
        lines.append(f"| {'-' if ratio is None else f'{ratio:g}'} | " + " | ".join(f"{by_value[v]:.4g}" for v in args.values)
                     + f" | {best[ratio]} |")
    print(f"\n{args.metric} of {stem} on {args.indices}:\n" + "\n".join(lines))

    if args.write and None not in best:
        path = Path(args.write)
        tuned = (yaml.safe_load(path.read_text()) if path.is_file() else None) or {}
        entry = tuned.setdefault(stem, {})
        for ratio, value in best.items():
            if value is not None:
                entry.setdefault(ratio, {})[args.param] = yaml.safe_load(value)
        path.write_text(yaml.safe_dump(tuned, sort_keys=True))
        print(f"best values written to {path}")


if __name__ == "__main__":
    main()
