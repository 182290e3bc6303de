"""The one-image-at-a-time baseline: Net-GD as the paper's own code runs it, in plain PyTorch, for speed tables.

Example (the reference row of ``docs/results/speed/``)::

    python scripts/bench/reference_loop.py --data-root ../shared/data --indices 0 1 2 3 --ratio 0.25

Written from the paper's description of its experiments, independently of this package (no
``dip_lightning`` import, so it also cross-checks the batched implementation): one stock
``nn.Sequential`` Deep Decoder per image (1x1 ``nn.Conv2d`` without bias, ReLU,
``nn.BatchNorm2d``, bilinear x2 ``nn.Upsample``; channels 25, 15, 10; a final 1x1 convolution and
sigmoid), a fixed input ``U[0, 0.1)``, SGD with learning rate 0.08 and momentum 0.9 on
``mean((A x - y)^2)`` for 5000 iterations, a float32 Gaussian matrix with entries N(0, 1/m).
Images are MNIST test digits read from the published IDX file. Prints one line per digit and a summary
line (seconds per digit, mean / median nMSE), and ``--json`` writes them.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

import numpy as np
import torch
from torch import nn


def test_digits(data_root: str) -> np.ndarray:
    """The 10,000 MNIST test digits, (10000, 28, 28) uint8, read from the IDX file as published
    (a 16-byte big-endian header, then the pixels)."""
    path = os.path.join(data_root, "MNIST", "raw", "t10k-images-idx3-ubyte")
    with open(path, "rb") as handle:
        magic, count, rows, cols = np.frombuffer(handle.read(16), dtype=">u4")
        if magic != 2051:
            raise SystemExit(f"{path} is not an IDX image file")
        return np.frombuffer(handle.read(), dtype=np.uint8).reshape(count, rows, cols)


def decoder(channels: list[int], out_channels: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    for c_in, c_out in zip(channels[:-1], channels[1:]):
        layers += [nn.Conv2d(c_in, c_out, 1, bias=False), nn.ReLU(), nn.BatchNorm2d(c_out),
                   nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False)]
    return nn.Sequential(*layers, nn.Conv2d(channels[-1], out_channels, 1, bias=False), nn.Sigmoid())


def reconstruct(x: torch.Tensor, matrix: torch.Tensor, iterations: int, seed: int) -> torch.Tensor:
    torch.manual_seed(seed)
    channels = [25, 15, 10]
    net = decoder(channels, 1).to(x.device)
    scale = 2 ** (len(channels) - 1)
    z = (0.1 * torch.rand(1, channels[0], x.shape[-2] // scale, x.shape[-1] // scale)).to(x.device)
    y = matrix @ x.flatten()
    optimizer = torch.optim.SGD(net.parameters(), lr=0.08, momentum=0.9)
    for _ in range(iterations):
        optimizer.zero_grad()
        loss = (matrix @ net(z).flatten() - y).pow(2).mean()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        return net(z)[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-root", required=True)
    parser.add_argument("--indices", type=int, nargs="+", required=True, help="MNIST test digits")
    parser.add_argument("--ratio", type=float, default=0.25)
    parser.add_argument("--iterations", type=int, default=5000)
    parser.add_argument("--json", default=None)
    parser.add_argument("--device", default="cpu", help="e.g. cuda: the same loop on a GPU")
    args = parser.parse_args()

    started = time.perf_counter()
    digits = test_digits(args.data_root)
    n = 28 * 28
    m = round(args.ratio * n)
    matrix = (torch.randn(m, n, generator=torch.Generator().manual_seed(0)) / m**0.5).to(args.device)
    nmse = []
    for index in args.indices:
        x = (torch.from_numpy(digits[index].astype(np.float32)).view(1, 28, 28) / 255).to(args.device)
        t = time.perf_counter()
        x_hat = reconstruct(x, matrix, args.iterations, seed=index)
        nmse.append(float((x_hat - x).pow(2).sum() / x.pow(2).sum()))
        print(f"digit {index}: nMSE {nmse[-1]:.4f}, {time.perf_counter() - t:.2f} s", flush=True)
    seconds = time.perf_counter() - started
    record = {"images": len(nmse), "seconds": seconds, "seconds_per_image": seconds / len(nmse),
              "nmse_mean": statistics.mean(nmse), "nmse_median": statistics.median(nmse), "nmse_worst": max(nmse),
              "ratio": args.ratio, "iterations": args.iterations, "threads": torch.get_num_threads(),
              "device": args.device}
    print(json.dumps(record))
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(record, handle, indent=2)


if __name__ == "__main__":
    main()
