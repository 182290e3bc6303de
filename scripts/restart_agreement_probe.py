
"""Do an image's restarts agree? Every restart of a phase-retrieval config, kept for a second failure signal.

At f = 0.2 a lost digit fits its magnitudes as closely as a good one (docs/results/mnist_cpr/robust.md), so the
residual flag misses it. When the measurements do not single out one image, restarts that fit them equally well
may land on different images; when they do, the restarts that fit best should agree. This probe runs a config
exactly as ``dip-lightning fit`` builds it (no rescue round), and at the end of its budget records, per image,
every restart's estimate x_r (restarts, C, H, W), its relative residual ||y - |A x_r||| / ||y||, its nMSE and its
relative distance ||x_r - x_best|| / ||x_best|| to the restart with the lowest residual, and saves them with the
image's reconstruction and nMSE in ``--out`` (a ``torch.save`` dict) for the threshold study. Tune on training
digits::

    python scripts/restart_agreement_probe.py --config configs/mnist_cpr_netgd.yaml --ratio 0.2 --train \\
        --random 64 --seed 15 --dataset-size 60000 --out runs/agreement/train_f0.2.pt

``--summarize FILE ...`` reads saved files instead and prints, per file, how many lost images (nMSE > 0.1) and good
ones each flag marks: the residual (above the config's ``suspect_residual`` at that f), too few restarts within
``best_radius`` of the best (fewer than ``--agreement``), and either; and the distances from each best restart to
its nearest other one, the margin a radius has.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from dip_lightning.algorithms import Restarts
from dip_lightning.cli import instantiate
from dip_lightning.metrics import normalized_mse


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--summarize", nargs="+", metavar="FILE", help="summarize saved files instead of running")
    parser.add_argument("--agreement", type=int, default=2, help="with --summarize: the suspect_agreement to count")
    parser.add_argument("--config")
    parser.add_argument("--ratio", type=float)
    parser.add_argument("--train", action="store_true", help="MNIST training digits (default: test digits)")
    parser.add_argument("--random", type=int, help="this many random images (numpy default_rng(seed))")
    parser.add_argument("--seed", type=int)
    parser.add_argument("--dataset-size", type=int, default=10000)
    parser.add_argument("--data-root", default="../shared/data")
    parser.add_argument("--out")
    parser.add_argument("extra", nargs="*", help="further CLI overrides, after --")
    args = parser.parse_args()
    if args.summarize:
        for path in args.summarize:
            summarize(path, args.agreement)
        return
    if None in (args.config, args.ratio, args.random, args.seed, args.out):
        parser.error("--config, --ratio, --random, --seed and --out are needed to run (or --summarize FILE ...)")
    chosen = sorted(np.random.default_rng(args.seed).choice(args.dataset_size, args.random, replace=False).tolist())
    print(f"{args.random} random images (seed {args.seed}): {chosen}", flush=True)
    torch.set_num_threads(2)
    overrides = ["--model.operator.ratio", str(args.ratio), "--model.rescue_rounds", "0",
                 "--data.indices", json.dumps(chosen), "--data.num_images", str(len(chosen)), "--data.root", args.data_root,
                 *(["--data.train", "true"] if args.train else []), *args.extra]
    model, datamodule = instantiate(args.config, overrides)
    records: dict[str, list] = {k: [] for k in ("index", "target", "estimates", "residuals", "nmse", "distance",
                                                "reconstruction", "reconstruction_nmse", "reconstruction_residual")}
    started = time.perf_counter()

    @torch.no_grad()
    def keep(chunk, loss) -> None:
        if chunk.round or chunk.iteration != model.iterations:
            return
        estimates = model.decoder_estimates(chunk).view(chunk.restarts, chunk.size, *chunk.image_shape)
        per_restart = chunk.measurements.repeat(chunk.restarts, 1)
        residual = model.operator.relative_residual(estimates.flatten(0, 1), per_restart).view(chunk.restarts, -1)
        nmse = normalized_mse(estimates.flatten(0, 1), chunk.target.repeat(chunk.restarts, 1, 1, 1))
        best = estimates[residual.nan_to_num(torch.inf).argmin(0), torch.arange(chunk.size)]
        distance = (estimates - best).flatten(2).norm(dim=2) / best.flatten(1).norm(dim=1)
        for key, value in (("estimates", estimates.transpose(0, 1)), ("residuals", residual.T),
                           ("nmse", nmse.view(chunk.restarts, -1).T), ("distance", distance.T)):
            records[key].append(value.cpu())

    for batch in datamodule.test_dataloader():
        result = model.reconstruct(batch, on_step=keep)
        records["index"].append(result.index)
        records["target"].append(result.target)
        records["reconstruction"].append(result.reconstruction)
        records["reconstruction_nmse"].append(result.metrics["nmse"])
        records["reconstruction_residual"].append(result.metrics["residual"])
        print(f"{len(torch.cat(records['index']))} images, {time.perf_counter() - started:.0f} s", flush=True)
    saved = {k: torch.cat(v) for k, v in records.items()}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    torch.save({**saved, "config": args.config, "ratio": args.ratio, "train": args.train, "extra": args.extra, "suspect_residual": model.suspect_residual, "restarts": Restarts(best_radius=model.best_radius)}, args.out)
    for i in range(len(saved["index"])):
        order = saved["residuals"][i].argsort()
        print(f"{int(saved['index'][i])}: nMSE {float(saved['reconstruction_nmse'][i]):.4f} residual "
              f"{float(saved['reconstruction_residual'][i]):.3f}; restarts by residual (residual/nMSE/distance): "
              + ", ".join(f"{float(saved['residuals'][i, r]):.3f}/{float(saved['nmse'][i, r]):.3f}/"
                          f"{float(saved['distance'][i, r]):.2f}" for r in order[:6]))


def summarize(path: str, agreement: int) -> None:
    saved = torch.load(path)
    lost = saved["reconstruction_nmse"] > 0.1
    by_residual = ~(saved["reconstruction_residual"] <= saved["suspect_residual"])
    by_agreement = (saved["distance"] <= saved["best_radius"]).sum(1) < agreement
    nearest = saved["distance"].sort(1).values[:, 1]  # [:, 0] is the best restart itself

    def counts(flag: torch.Tensor) -> str:
        return f"{int((flag & lost).sum())}/{int(lost.sum())} lost, {int((flag & ~lost).sum())}/{int((~lost).sum())} good"

    nmse = saved["reconstruction_nmse"]
    print(f"{path}: f = {saved['ratio']:g}, {len(nmse)} images, nMSE mean / median / worst {float(nmse.mean()):.4f} / "
          f"{float(nmse.median()):.4f} / {float(nmse.max()):.4f}")
    print(f"  flagged by the residual (> {saved['suspect_residual']:g}): {counts(by_residual)}; by fewer than "
          f"{agreement} restarts within {saved['best_radius']:g}: {counts(by_agreement)}; by either: "
          f"{counts(by_residual | by_agreement)}")
    print(f"  good flagged by agreement: {saved['index'][by_agreement & ~lost].tolist()}; lost and unflagged: "
          f"{saved['index'][lost & ~(by_residual | by_agreement)].tolist()}")
    print(f"  nearest other restart: lost {sorted(round(float(v), 3) for v in nearest[lost])}; good, largest five "
          f"{sorted(round(float(v), 3) for v in nearest[~lost])[-5:]}")


if __name__ == "__main__":
    main()
