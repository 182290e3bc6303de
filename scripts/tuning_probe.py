"""Compare settings of a config on images nobody evaluates on: how the quality configs' budgets and step sizes
were chosen (docs/results/speed/README.md).

Each ``--variant "OVERRIDES"`` is the config plus those command-line overrides, built exactly as
``dip-lightning fit`` builds it (:func:`dip_lightning.cli.instantiate`) and run through the package's loop on one
chunk of the chosen images, without the Trainer; a learning-rate schedule is one more override
(``--model.lr_scheduler torch.optim.lr_scheduler.CosineAnnealingLR --model.lr_scheduler.T_max 1500``). Prints mean /
median / worst nMSE and the seconds of the chunk (the first run of a new shape includes its compilation). Examples (the tables of docs/results/speed/README.md)::

    python scripts/tuning_probe.py --config configs/mnist_cs_netgd.yaml --train-digits 32 --seed 5 \\
        --variant "--model.operator.ratio 0.1" --variant "--model.optimizer.init_args.lr 0.25"
    python scripts/tuning_probe.py --config configs/celeba_cs_netgd.yaml --indices "[8, 9, 10, 11, 12, 13, 14, 15]" \\
        --variant "--model.iterations 600" --variant "--model.iterations 500 --model.optimizer.init_args.lr 0.03"
"""

from __future__ import annotations

import argparse
import json
import shlex
import time

import numpy as np

from dip_lightning.cli import instantiate
from dip_lightning.metrics import normalized_mse


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True)
    parser.add_argument("--data-root", default="../shared/data")
    parser.add_argument("--variant", action="append", default=[], help="overrides of one variant (repeatable)")
    parser.add_argument("--train-digits", type=int, default=0, help="MNIST: this many random *training* digits")
    parser.add_argument("--seed", type=int, default=5, help="picks the random training digits")
    parser.add_argument("--indices", help="the images by dataset index, e.g. CelebA faces outside the evaluation set")
    args = parser.parse_args()
    if args.train_digits:
        indices = sorted(np.random.default_rng(args.seed).choice(60000, args.train_digits, replace=False).tolist())
    else:
        indices = json.loads(args.indices)
    selection = ["--data.train", "true"] if args.train_digits else []
    selection += ["--data.indices", str(indices), "--data.num_images", str(len(indices)),
                  "--data.chunk_size", str(len(indices))]
    print(f"{args.config} on images {indices}" + (f" (training digits, seed {args.seed})" if args.train_digits else ""))
    for variant in args.variant or [""]:
        model, datamodule = instantiate(args.config, ["--data.root", args.data_root, *selection, *shlex.split(variant)])
        batch = next(iter(datamodule.test_dataloader()))
        started = time.perf_counter()
        result = model.reconstruct(batch, stop_early=False)
        seconds = time.perf_counter() - started
        nmse = normalized_mse(result.reconstruction, batch["image"])
        print(f"{variant or '(the config)'}: nMSE mean {nmse.mean():.4f} median {nmse.median():.4f} "
              f"worst {nmse.max():.4f} ({seconds:.1f} s)", flush=True)


if __name__ == "__main__":
    main()
