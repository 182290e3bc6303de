"""Where one outer iteration spends its time: torch.profiler over a few steps of a config, without the Trainer.

Example (``docs/results/speed/profile_*.txt``)::

    python scripts/profile_step.py --config configs/mnist_cs_netgd.yaml --data-root ../shared/data --steps 50
    python scripts/profile_step.py --config configs/mnist_cs_netgd.yaml --data-root ../shared/data --steps 50 \
        --model.compile true

The model and data are built exactly as ``dip-lightning fit --config ...`` builds them (any further
``--key value`` overrides are passed on); one chunk is measured, ``--warmup`` steps (compilation
included) are run first, then ``--steps`` steps are profiled. Prints the mean wall time of a step
and the operations sorted by their own CPU time.
"""

from __future__ import annotations

import argparse
import time

import torch
from benchmark import build
from torch.profiler import ProfilerActivity, profile


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
    model, datamodule = build(args.config, None, args.steps + args.warmup, args.data_root, extra)
    datamodule.setup("fit")
    model = model.to(device)
    indices = datamodule.selection[: model.chunk_size]
    batch = {"index": torch.tensor(indices), "image": torch.stack([datamodule.images[i] for i in indices]).to(device)}
    with torch.enable_grad():
        chunk = model.begin_chunk(batch)
        for _ in range(args.warmup):
            model.outer_step(chunk)
        if cuda:
            torch.cuda.synchronize(device)
        started = time.perf_counter()
        for _ in range(args.steps):
            model.outer_step(chunk)
        if cuda:
            torch.cuda.synchronize(device)
        seconds = (time.perf_counter() - started) / args.steps
        activities = [ProfilerActivity.CPU, ProfilerActivity.CUDA] if cuda else [ProfilerActivity.CPU]
        with profile(activities=activities) as profiler:
            for _ in range(args.steps):
                model.outer_step(chunk)
    where = torch.cuda.get_device_name(device) if cuda else f"{torch.get_num_threads()} threads"
    print(f"{args.config} {' '.join(extra)}: {chunk.size} images x {chunk.restarts} restarts = {chunk.decoders} networks, "
          f"{seconds * 1e3:.2f} ms per outer iteration ({where})\n")
    print(profiler.key_averages().table(sort_by="self_cuda_time_total" if cuda else "self_cpu_time_total",
                                        row_limit=args.rows, max_name_column_width=60))


if __name__ == "__main__":
    main()
