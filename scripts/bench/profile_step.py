"""Where one outer iteration spends its time: torch.profiler over a few steps of a config, without the Trainer.

Example (``docs/results/speed/profile_*.txt``)::

    python scripts/bench/profile_step.py --config configs/mnist_cs_netgd.yaml --data-root ../shared/data --steps 50
    python scripts/bench/profile_step.py --config configs/mnist_cs_netgd.yaml --data-root ../shared/data --steps 50 \
        --model.compile true

The model and data are built exactly as ``dip-lightning fit --config ...`` builds them (any further
``--key value`` overrides are passed on); one chunk is run through the package's loop: ``--warmup`` steps (compilation
included), ``--steps`` timed steps, then ``--steps`` profiled steps. Prints the mean wall time of a step
and the operations sorted by their own CPU time.
"""

from __future__ import annotations

import argparse
import time

import torch
from benchmark import build
from torch.profiler import ProfilerActivity, profile, schedule


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True)
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--rows", type=int, default=20, help="operations listed")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args, extra = parser.parse_known_args()

    device = torch.device(args.device)
    cuda = device.type == "cuda"
    total = args.warmup + 2 * args.steps  # warm-up (compilation included), timed steps, profiled steps
    model, datamodule = build(args.config, None, total, args.data_root, extra)
    model = model.to(device)
    batch = {k: v.to(device) for k, v in next(iter(datamodule.test_dataloader())).items()}
    marks: dict[int, float] = {}
    activities = [ProfilerActivity.CPU, ProfilerActivity.CUDA] if cuda else [ProfilerActivity.CPU]
    # the profiler records only the last `steps` iterations: skipped while warming up and timing
    with profile(activities=activities, schedule=schedule(wait=args.warmup + args.steps, warmup=0, active=args.steps),
                 ) as profiler:
        def on_step(chunk, loss) -> None:
            if chunk.iteration in (args.warmup, args.warmup + args.steps):
                if cuda:
                    torch.cuda.synchronize(device)
                marks[chunk.iteration] = time.perf_counter()
            profiler.step()

        result = model.reconstruct(batch, on_step=on_step, stop_early=False)
    seconds = (marks[args.warmup + args.steps] - marks[args.warmup]) / args.steps
    decoders = len(result.index) * model.estimates_per_image()
    where = torch.cuda.get_device_name(device) if cuda else f"{torch.get_num_threads()} threads"
    print(f"{args.config} {' '.join(extra)}: {len(result.index)} images x {model.estimates_per_image()} restarts = {decoders} networks, "
          f"{seconds * 1e3:.2f} ms per outer iteration ({where})\n")
    print(profiler.key_averages().table(sort_by="self_cuda_time_total" if cuda else "self_cpu_time_total",
                                        row_limit=args.rows, max_name_column_width=60))


if __name__ == "__main__":
    main()
