"""Choose the TV weight lambda and the coupling rho of Net-GD's TV image step (``NetGDTV``) on images nobody reports on.

For each sampling ratio the config's Net-GD search runs once on the chosen images (``instantiate`` + ``reconstruct``,
as ``dip-lightning fit`` runs it; a ``NetGDTV`` config as ``NetGD``, without its image step); its reconstruction g is
then the anchor of
``min_x 1/2 ||A x - y||^2 + lambda TV(x) + rho/2 ||x - g||^2`` (:class:`~dip_lightning.algorithms.total_variation.AnchoredTV`)
for every (lambda, rho) of the grid, all in one batched solve. Prints, per ratio, the mean nMSE of Net-GD alone, of
TV alone (rho 0, from zero) at each lambda, and of every (lambda, rho); writes all of it as JSON.

Example (MNIST training digits)::

    python scripts/tune_splitting.py --config configs/mnist_cs_netgd.yaml --ratios 0.1 0.2 0.25 0.3 0.5 \\
        --random 32 --seed 11 --data-root ../shared/data --out runs/tune_splitting/mnist.json -- --data.train true
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import time
from pathlib import Path

import torch

from dip_lightning.algorithms.total_variation import AnchoredTV
from dip_lightning.cli import instantiate
from dip_lightning.metrics import normalized_mse


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True)
    parser.add_argument("--ratios", nargs="+", type=float, required=True)
    parser.add_argument("--random", type=int, help="this many random images (--data.random; else the selection "
                        "the config and the overrides after -- make, e.g. --data.indices)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--weights", nargs="+", type=float, default=[0.0003, 0.001, 0.003, 0.01])
    parser.add_argument("--couplings", nargs="+", type=float, default=[0.0, 0.001, 0.003, 0.01, 0.03, 0.1, 0.3])
    parser.add_argument("--iterations", nargs="+", type=int, default=[4000],
                        help="primal-dual steps of each solve; several counts: one table each (the cost of the step)")
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--out", required=True)
    parser.add_argument("extra", nargs="*", help="further CLI overrides, after --")
    args = parser.parse_args()
    report = {"arguments": vars(args), "ratios": {}}
    for ratio in args.ratios:
        started = time.perf_counter()
        chosen = ["--data.random", str(args.random), "--data.seed", str(args.seed)] if args.random else []
        # the config's Net-GD search alone (a NetGDTV config without its image step), whose reconstruction is g
        overrides = ["--model.class_path", "dip_lightning.algorithms.NetGD", "--model.operator.ratio", str(ratio), *chosen,
                     *args.extra, *(["--data.root", args.data_root] if args.data_root else [])]
        _, data = instantiate(args.config, overrides)  # what the selection is, then all of it in one chunk
        model, data = instantiate(args.config, [*overrides, "--data.chunk_size", str(len(data.selection))])
        batch = next(iter(data.test_dataloader()))
        anchor = model.reconstruct(batch).reconstruction
        target, index = batch["image"], batch["index"]
        y = model.operator.measure(target, index)
        seconds = time.perf_counter() - started
        solver = AnchoredTV(model.operator)
        grid = list(itertools.product(args.weights, args.couplings))
        copies = len(grid)
        weights = torch.tensor([w for w, _ in grid]).repeat_interleave(len(index))
        couplings = torch.tensor([c for _, c in grid]).repeat_interleave(len(index))
        # TV alone starts from zero (as TVMinimization); the splitting from the anchor
        starts = torch.where((couplings == 0).view(-1, 1, 1, 1), torch.zeros_like(anchor.repeat(copies, 1, 1, 1)),
                             anchor.repeat(copies, 1, 1, 1))
        netgd = normalized_mse(anchor, target)
        entry = {"indices": index.tolist(), "netgd": summarize(netgd), "netgd_seconds": round(seconds, 1), "steps": {}}
        report["ratios"][f"{ratio:g}"] = entry
        print(f"\nf = {ratio:g}: Net-GD {fmt(entry['netgd'])} ({seconds:.0f} s)")
        for steps in args.iterations:
            started = time.perf_counter()
            solved = solver.solve(y.repeat(copies, 1), anchor.repeat(copies, 1, 1, 1), weights, couplings, steps,
                                  start=starts)
            nmse = normalized_mse(solved, target.repeat(copies, 1, 1, 1)).view(copies, len(index))
            grid_seconds = time.perf_counter() - started
            table = {f"{w:g},{c:g}": summarize(nmse[k]) for k, (w, c) in enumerate(grid)}
            entry["steps"][str(steps)] = {"grid": table, "seconds": round(grid_seconds, 1)}
            print(f"{steps} primal-dual steps ({grid_seconds:.0f} s for the {copies} settings); rows lambda, "
                  f"columns rho (0: TV alone)")
            print("| lambda \\ rho | " + " | ".join(f"{c:g}" for c in args.couplings) + " |")
            for w in args.weights:
                print(f"| {w:g} | " + " | ".join(f"{table[f'{w:g},{c:g}']['mean']:.4f}" for c in args.couplings) + " |")
            best = min(table.items(), key=lambda item: item[1]["mean"])
            print(f"best {best[0]}: {fmt(best[1])}", flush=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=1))


def summarize(values: torch.Tensor) -> dict[str, float]:
    values = values.tolist()
    return {"mean": statistics.fmean(values), "median": statistics.median(values), "worst": max(values)}


def fmt(stats: dict[str, float]) -> str:
    return f"{stats['mean']:.4f} / {stats['median']:.4f} / {stats['worst']:.4f}"


if __name__ == "__main__":
    main()
