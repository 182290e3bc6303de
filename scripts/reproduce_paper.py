"""Reproduce the experiments of Jagatap & Hegde (NeurIPS 2019): nMSE against the compression ratio f
for the untrained priors (Net-GD, Net-PGD) and the hand-crafted baselines, on many images.

Examples::

    # MNIST compressive sensing, 16 random test digits (about 20 minutes on a 2-core CPU)
    python scripts/reproduce_paper.py --dataset mnist --problem cs --num-images 16 \
        --data-root ../shared/data --out runs/paper/mnist_cs
    # phase retrieval; the baselines only; two ratios
    python scripts/reproduce_paper.py --problem cpr --methods sparta taf --ratios 1 3 --out runs/paper/cpr

Each (method, f) is one ``dip-lightning fit`` run of ``configs/<dataset>_<problem>_<method>.yaml``
(in this process, through the real CLI) with ``--model.operator.ratio f``, the selected images, the
baseline parameters tuned per ratio by ``scripts/tune_baseline.py`` (``--tuned``, on images that
are not evaluation images) and any ``--override``. A run's folder is ``OUT/runs/<config>/f<f>``;
running the same command again resumes (finished images are skipped). Writes:

- ``OUT/results.csv``: one row per (method, f, image): method, ratio, index, nmse, psnr, ssim;
- ``OUT/table.md``: mean and median nMSE per (method, f), and the paper's reported values;
- ``OUT/nmse_vs_f.png``: mean nMSE against f (log scale), one line per method, the paper's
  MNIST values as open markers;

and logs them to a Weights & Biases run in ``OUT/wandb`` (offline unless ``WANDB_MODE`` says
otherwise; ``--no-wandb`` to skip).
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import shlex
import statistics
import time
from pathlib import Path

import yaml

from dip_lightning.cli import run_fit
from dip_lightning.data.base import random_selection

CONFIGS = Path(__file__).resolve().parent.parent / "configs"
METHODS = {
    "cs": ["netgd", "netpgd", "lasso_dct", "lasso_wavelet", "tv"],
    "cpr": ["netgd", "netpgd", "sparta", "taf"],
}
LABELS = {"netgd": "Net-GD", "netpgd": "Net-PGD", "lasso_dct": "Lasso (DCT)", "lasso_wavelet": "Lasso (wavelet)",
          "tv": "TV", "sparta": "SPARTA (DCT)", "taf": "TAF"}
RATIOS = {"cs": [0.08, 0.1, 0.15, 0.2, 0.25, 0.3], "cpr": [0.1, 0.2, 0.3, 0.5, 1.0, 3.0]}
DEFAULT_IMAGES = {"mnist": 100, "celeba": 56}
NUM_AVAILABLE = {"mnist": 10000, "celeba": 64}
CELEBA_TUNING_FACES = range(56, 64)  # the baselines are tuned on these test-split faces, never evaluated on

# The paper's MNIST nMSE (NeurIPS'19 talk slides, six digits), keyed by our method it corresponds to.
PAPER = {
    "cs": {"netgd": [0.375, 0.081, 0.030, 0.029, 0.019, 0.014],
           "netpgd": [0.229, 0.077, 0.040, 0.031, 0.024, 0.016],
           "lasso_dct": [1.40, 1.30, 1.13, 0.75, 0.51, 0.48],
           "tv": [0.48, 0.26, 0.15, 0.07, 0.06, 0.008]},
    "cpr": {"netgd": [0.78, 0.78, 0.045, 0.012, 0.015, 0.014],
            "netpgd": [0.85, 0.79, 0.070, 0.017, 0.017, 0.016],
            "sparta": [math.nan, math.nan, 0.89, 0.75, 0.41, 0.004]},
}
PAPER_LABELS = {"lasso_dct": "Lasso", "tv": "TVAL3", "sparta": "Sparta"}
COLUMNS = ["method", "ratio", "index", "nmse", "psnr", "ssim"]


def evaluation_indices(args: argparse.Namespace) -> list[int]:
    if args.indices:
        return [int(i) for i in yaml.safe_load(args.indices)]
    num = args.num_images or DEFAULT_IMAGES[args.dataset]
    if args.dataset == "celeba":
        return [i for i in range(NUM_AVAILABLE["celeba"]) if i not in CELEBA_TUNING_FACES][:num]
    return random_selection(range(NUM_AVAILABLE["mnist"]), num, args.seed)  # what --data.random num --data.seed draws


def parse_overrides(items: list[str]) -> dict[str, list[str]]:
    """``["netpgd=--model.restarts.count 8", ...]`` -> ``{"netpgd": ["--model.restarts.count", "8"]}``."""
    overrides: dict[str, list[str]] = {}
    for item in items:
        method, _, arguments = item.partition("=")
        if method not in LABELS or not arguments:
            raise SystemExit(f"--override {item!r}: expected METHOD=ARGUMENTS with METHOD one of {sorted(LABELS)}")
        overrides.setdefault(method, []).extend(shlex.split(arguments))
    return overrides


def tuned_arguments(tuned: dict, config: str, ratio: float) -> list[str]:
    entry = tuned.get(config, {})
    values = next((v for f, v in entry.items() if math.isclose(float(f), ratio)), {})
    return [a for name, value in values.items() for a in (f"--model.{name}", str(value))]


def stacked(config: Path) -> list[Path]:
    """``config`` alone, or, for a config that holds only what differs from its problem's Net-GD config (no
    operator: ``mnist_cpr_netpgd.yaml``), that Net-GD config and ``config`` on top of it."""
    model = yaml.safe_load(config.read_text()).get("model", {})
    if "operator" in model.get("init_args", {}):
        return [config]
    return [config.with_name(config.name.replace(config.stem.rsplit("_", 1)[1], "netgd")), config]


def run(config: Path, ratio: float, indices: list[int], arguments: list[str], out: Path) -> list[dict]:
    """One reconstruction run through the CLI; returns its per-image rows."""
    return run_fit(stacked(config), out, ["--model.operator.ratio", str(ratio), "--data.indices", str(indices),
                                          "--data.num_images", str(len(indices)), *arguments])["rows"]


def aggregate(rows: list[dict]) -> dict[tuple[str, float], dict[str, float]]:
    groups: dict[tuple[str, float], list[float]] = {}
    for row in rows:
        groups.setdefault((row["method"], float(row["ratio"])), []).append(float(row["nmse"]))
    return {key: {"mean": statistics.fmean(v), "median": statistics.median(v), "count": len(v)}
            for key, v in groups.items()}


def format_nmse(value: float | None) -> str:
    """Four decimals; values that would print as 0.0000 (exact recovery) in scientific notation."""
    if value is None:
        return "-"
    return f"{value:.1e}" if 0 < value < 5e-5 else f"{value:.4f}"


def markdown_tables(stats: dict, methods: list[str], ratios: list[float], problem: str, title: str) -> str:
    head = "| method | " + " | ".join(f"f={f:g}" for f in ratios) + " |\n|---" + "|---" * len(ratios) + "|\n"
    out = [f"## {title}\n"]
    for statistic in ("mean", "median"):
        out.append(f"\n### {statistic} nMSE\n\n" + head)
        for method in methods:
            cells = [stats.get((method, f), {}).get(statistic) for f in ratios]
            out.append(f"| {LABELS[method]} | " + " | ".join(format_nmse(c) for c in cells) + " |\n")
    paper_ratios = RATIOS[problem]
    out.append("\n### The paper's MNIST values (six digits)\n\n| method | "
               + " | ".join(f"f={f:g}" for f in paper_ratios) + " |\n|---" + "|---" * len(paper_ratios) + "|\n")
    for method, values in PAPER[problem].items():
        label = PAPER_LABELS.get(method, LABELS[method])
        out.append(f"| {label} | " + " | ".join("-" if math.isnan(v) else f"{v:g}" for v in values) + " |\n")
    return "".join(out)


NMSE_FLOOR = 1e-4  # exact recoveries (1e-13) would squeeze every other line into the top of the plot


def plot(stats: dict, methods: list[str], ratios: list[float], problem: str, dataset: str, title: str, path: Path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(6.4, 4.4))
    for number, method in enumerate(methods):
        colour = f"C{number}"
        points = [(f, max(stats[(method, f)]["mean"], NMSE_FLOOR)) for f in ratios if (method, f) in stats]
        if points:
            axes.plot(*zip(*points), "o-", color=colour, label=LABELS[method])
            floored = [(f, v) for f, v in points if v <= NMSE_FLOOR]
            if floored:
                axes.plot(*zip(*floored), "v", color=colour, markersize=9)
        if dataset == "mnist" and method in PAPER[problem]:
            paper = [(f, v) for f, v in zip(RATIOS[problem], PAPER[problem][method]) if not math.isnan(v)]
            axes.plot(*zip(*paper), "s", mfc="none", color=colour, ls=":", alpha=0.8,
                      label=f"paper: {PAPER_LABELS.get(method, LABELS[method])}")
    axes.set_yscale("log")
    if problem == "cpr":
        axes.set_xscale("log")
    axes.set_xlabel("compression ratio f = m / n")
    axes.set_ylabel(f"mean nMSE (triangles: below {NMSE_FLOOR:g})")
    axes.set_title(title, fontsize=10)
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(fontsize=7, ncol=2)
    figure.tight_layout()
    figure.savefig(path, dpi=150)
    plt.close(figure)


def log_to_wandb(out: Path, rows: list[dict], stats: dict, args: argparse.Namespace, indices: list[int]) -> None:
    import os

    import wandb

    os.environ.setdefault("WANDB_MODE", "offline")
    run = wandb.init(project="dip-lightning", dir=str(out), name=f"reproduce-{args.dataset}-{args.problem}",
                     job_type="reproduce-paper", config={**vars(args), "indices": indices})
    run.log({
        "results": wandb.Table(columns=COLUMNS, data=[[row[c] for c in COLUMNS] for row in rows]),
        "table": wandb.Table(columns=["method", "ratio", "nmse_mean", "nmse_median", "images"],
                             data=[[LABELS[m], f, s["mean"], s["median"], s["count"]] for (m, f), s in stats.items()]),
        "nmse_vs_f": wandb.Image(str(out / "nmse_vs_f.png")),
    })
    run.finish()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", choices=["mnist", "celeba"], default="mnist")
    parser.add_argument("--problem", choices=["cs", "cpr"], default="cs")
    parser.add_argument("--num-images", type=int, default=None,
                        help=f"images to evaluate (default {DEFAULT_IMAGES}); MNIST test digits are drawn at random")
    parser.add_argument("--seed", type=int, default=2026, help="seed of the random MNIST digits")
    parser.add_argument("--indices", default=None, help='explicit image indices, e.g. "[0, 5, 7]"')
    parser.add_argument("--methods", nargs="+", default=None, help=f"a subset of {METHODS}")
    parser.add_argument("--ratios", nargs="+", type=float, default=None, help=f"a subset of {RATIOS} (or others)")
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--out", default=None, help="default runs/paper/<dataset>_<problem>")
    parser.add_argument("--tuned", default=str(CONFIGS / "paper" / "tuned.yaml"),
                        help="per-ratio baseline parameters written by scripts/tune_baseline.py ('' for none)")
    parser.add_argument("--override", action="append", default=[], metavar="METHOD=ARGS",
                        help='CLI overrides for one method, e.g. "netpgd=--model.restarts.count 8" (repeatable)')
    parser.add_argument("--no-wandb", action="store_true")
    args = parser.parse_args()

    methods = args.methods or METHODS[args.problem]
    unknown = [m for m in methods if m not in METHODS[args.problem]]
    if unknown:
        raise SystemExit(f"--methods {unknown}: for {args.problem} choose from {METHODS[args.problem]}")
    ratios = args.ratios or RATIOS[args.problem]
    out = Path(args.out or f"runs/paper/{args.dataset}_{args.problem}")
    out.mkdir(parents=True, exist_ok=True)
    indices = evaluation_indices(args)
    overrides = parse_overrides(args.override)
    tuned = yaml.safe_load(Path(args.tuned).read_text()) if args.tuned and Path(args.tuned).is_file() else {}
    how = f"seed {args.seed}" if args.dataset == "mnist" and not args.indices else "given"
    print(f"{args.dataset} {args.problem}: {len(indices)} images ({how}): {indices}", flush=True)
    print(f"methods {methods}, ratios {ratios}, baseline parameters from {args.tuned or 'the configs'}", flush=True)

    rows: list[dict] = []
    timings = []
    # a resumed sweep adds to the time its earlier invocations spent on each run
    previous = json.loads((out / "timings.json").read_text()) if (out / "timings.json").is_file() else []
    spent = {(t["method"], t["ratio"]): t["seconds"] for t in previous}
    for method in methods:
        config = CONFIGS / f"{args.dataset}_{args.problem}_{method}.yaml"
        for ratio in ratios:
            arguments = tuned_arguments(tuned, config.stem, ratio) + overrides.get(method, [])
            if args.data_root:
                arguments += ["--data.root", args.data_root]
            started = time.perf_counter()
            results = run(config, ratio, indices, arguments, out / "runs" / config.stem / f"f{ratio:g}")
            seconds = time.perf_counter() - started
            seconds += spent.get((method, ratio), 0.0)
            timings.append({"method": method, "ratio": ratio, "seconds": round(seconds, 1), "arguments": arguments})
            rows += [{"method": method, "ratio": ratio, **{c: row[c] for c in COLUMNS[2:]}} for row in results]
            with open(out / "results.csv", "w", newline="") as handle:  # after every run: partial results stay
                writer = csv.DictWriter(handle, fieldnames=COLUMNS)
                writer.writeheader()
                writer.writerows(rows)
            (out / "timings.json").write_text(json.dumps(timings, indent=2))
            mean = statistics.fmean(float(r["nmse"]) for r in results)
            print(f"[{LABELS[method]} f={ratio:g}] mean nMSE {mean:.4f} on {len(results)} images, {seconds:.0f} s",
                  flush=True)

    stats = aggregate(rows)
    title = f"{args.dataset} {args.problem}, {len(indices)} images"
    table = markdown_tables(stats, methods, ratios, args.problem, title)
    (out / "table.md").write_text(table)
    plot(stats, methods, ratios, args.problem, args.dataset, title, out / "nmse_vs_f.png")
    print("\n" + table)
    print(f"wall time {sum(t['seconds'] for t in timings):.0f} s; written to {out.resolve()}/ "
          "(results.csv, table.md, nmse_vs_f.png, timings.json)")
    if not args.no_wandb:
        log_to_wandb(out, rows, stats, args, indices)


if __name__ == "__main__":
    main()
