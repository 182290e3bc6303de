"""How many restarts and iterations compressive sensing needs, and whether pruning restarts by their data
loss (successive halving) keeps the quality: the exploration behind the quality configs' budgets.

Fits ``--restarts`` independent Deep Decoders per digit for ``--iterations`` (Net-GD, the quality config's
SGD) and records every network's estimate and relative residual ||y - A x|| / ||y|| at checkpoints.
Restarts are independent, so every cheaper schedule is a subset of this one run: "R restarts for T
iterations" is the first R networks at checkpoint T, and successive halving (keep the networks with the
lowest residual at each halving point) follows the same trajectories. For each schedule it prints the
mean / median / worst nMSE of the combined estimate (median of the survivors, as ``combine: median``, or
the survivor with the lowest residual, ``combine: best``) and its cost in network-iterations relative to
the full run. Tune on training digits (the default), check on test digits::

    python scripts/restart_probe.py --ratio 0.25 --digits 32 --seed 5
    python scripts/restart_probe.py --ratio 0.1 --digits 32 --seed 5
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from dip_lightning.algorithms import NetGD, Restarts
from dip_lightning.data import MNISTDataModule
from dip_lightning.metrics import normalized_mse
from dip_lightning.operators import CompressiveSensing


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ratio", type=float, default=0.25)
    parser.add_argument("--digits", type=int, default=32)
    parser.add_argument("--seed", type=int, default=5, help="picks the random digits")
    parser.add_argument("--train", type=int, default=1, help="1: training digits (tuning), 0: test digits")
    parser.add_argument("--restarts", type=int, default=8)
    parser.add_argument("--iterations", type=int, default=5000)
    parser.add_argument("--checkpoints", default="250,500,1000,1500,2000,2500,3000,4000,5000")
    parser.add_argument("--data-root", default="../shared/data")
    args = parser.parse_args()

    data = MNISTDataModule(root=args.data_root, train=bool(args.train))
    images = data.load_images()
    indices = sorted(np.random.default_rng(args.seed).choice(len(images), args.digits, replace=False).tolist())
    x = torch.stack([images[i] for i in indices])
    operator = CompressiveSensing((1, 28, 28), ratio=args.ratio)
    model = NetGD(operator, chunk_size=args.digits, iterations=args.iterations, compile=True, optimizer=lambda p: torch.optim.SGD(p, lr=0.08, momentum=0.9, foreach=True), restarts=Restarts(count=args.restarts))
    checkpoints = [int(c) for c in args.checkpoints.split(",")]
    estimates, residuals = {}, {}
    started = time.perf_counter()

    @torch.no_grad()
    def checkpoint(chunk, loss) -> None:
        if chunk.iteration in checkpoints:
            estimate = model.decoder_estimates(chunk)
            residual = operator.relative_residual(estimate, chunk.decoder_measurements)
            estimates[chunk.iteration] = estimate.view(args.restarts, args.digits, -1)
            residuals[chunk.iteration] = residual.view(args.restarts, args.digits)

    model.reconstruct({"index": torch.tensor(indices), "image": x}, on_step=checkpoint)
    print(f"{args.digits} {'training' if args.train else 'test'} digits (seed {args.seed}), f = {args.ratio}, "
          f"{args.restarts} restarts x {args.iterations} iterations in {time.perf_counter() - started:.0f} s", flush=True)
    target = x.flatten(1)

    def quality(alive: torch.Tensor, at: int, combine: str) -> torch.Tensor:
        """nMSE per digit of the combination of the networks ``alive`` (restarts x digits, bool) at ``at``."""
        estimate, residual = estimates[at], residuals[at]
        if combine == "best":
            pick = residual.masked_fill(~alive, float("inf")).argmin(0)
            combined = estimate[pick, torch.arange(args.digits)]
        else:
            masked = estimate.masked_fill(~alive[..., None], float("nan"))
            combined = masked.nanmedian(0).values  # torch's lower median, as combine: median
        return normalized_mse(combined.view(-1, 1, 28, 28), target.view(-1, 1, 28, 28))

    def halving(schedule: list[tuple[int, int]]) -> tuple[torch.Tensor, int]:
        """Networks alive after pruning to ``keep`` (lowest residual) at each (iteration, keep), and the cost."""
        alive = torch.ones(args.restarts, args.digits, dtype=torch.bool)
        cost, last, count = 0, 0, args.restarts
        for at, keep in schedule:
            cost += count * (at - last)
            order = residuals[at].masked_fill(~alive, float("inf")).argsort(0)
            alive = torch.zeros_like(alive)
            alive.scatter_(0, order[:keep], True)
            last, count = at, keep
        return alive, cost

    full = args.restarts * args.iterations
    rows = []
    for restarts in sorted({1, 2, 4, args.restarts}):
        for at in checkpoints:
            alive = torch.zeros(args.restarts, args.digits, dtype=torch.bool)
            alive[:restarts] = True
            for combine in ("median", "best"):
                rows.append((f"{restarts} restarts x {at}", combine, restarts * at / full, quality(alive, at, combine)))
    schedules = {
        "8 -> 4 at 250 -> 2 at 500 -> 1 at 1000": [(250, 4), (500, 2), (1000, 1)],
        "8 -> 4 at 500 -> 2 at 1000": [(500, 4), (1000, 2)],
        "8 -> 4 at 250 -> 2 at 500": [(250, 4), (500, 2)],
        "8 -> 4 at 500 -> 2 at 1000 -> 1 at 2000": [(500, 4), (1000, 2), (2000, 1)],
        "8 -> 4 at 250": [(250, 4)],
        "8 -> 4 at 500": [(500, 4)],
        "8 -> 2 at 500": [(500, 2)],
    }
    if args.restarts == 8:
        for name, schedule in schedules.items():
            for at in checkpoints:
                if at <= schedule[-1][0]:
                    continue
                alive, cost = halving(schedule)
                cost += int(alive[:, 0].sum()) * (at - schedule[-1][0])
                for combine in ("median", "best"):
                    rows.append((f"{name}, to {at}", combine, cost / full, quality(alive, at, combine)))
    print("| schedule | combine | cost | nMSE mean | median | worst | above 0.05 |\n|---|---|---|---|---|---|---|")
    for name, combine, cost, nmse in rows:
        print(f"| {name} | {combine} | {cost:.3f} | {nmse.mean():.4f} | {nmse.median():.4f} | {nmse.max():.4f} | "
              f"{int((nmse > 0.05).sum())} |")


if __name__ == "__main__":
    main()
