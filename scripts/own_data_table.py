"""Reconstruction from the user's own files: does a run that is given only the degraded data do as well as
the simulated benchmark, and better than the classical method on the same files?

Writes the files a user would bring, from a clean photo and from MNIST test digits, then runs the
README's "Your own data" commands on them (through the real CLI, in this process):

- denoising: the photo with Gaussian noise (sigma 25/255, the noise the simulated run draws), clipped
  and saved as an 8-bit PNG; DIP, TV and NL-means on that PNG, and DIP's simulated run on the clean photo;
- inpainting: the photo with random scratches, and the scratch mask as a PNG (white = observed);
  DIP and biharmonic inpainting;
- super-resolution: the photo downsampled x4 (anti-aliased bicubic), an 8-bit PNG; DIP and bicubic;
- compressive sensing: a Gaussian matrix A (``.npy``, m x n, f = 0.25) and y = A x (``.npy``) for
  ``--digits`` random MNIST test digits; Net-GD from the files against Net-GD simulating y with that matrix.

PSNR and SSIM are against the clean photo, which the runs get only as ``--data.references`` (for
the metrics; the methods never see it). Example (the README's table)::

    python scripts/own_data_table.py --out runs/own_data
"""

from __future__ import annotations

import argparse
import os
import random
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

from dip_lightning.cli import run_fit
from dip_lightning.data.base import DATA_ENV_VAR, resolve_root
from dip_lightning.data.mnist import MNISTDataModule
from dip_lightning.data.natural_images import NaturalImages
from dip_lightning.files import write_png
from dip_lightning.operators import Denoising, SuperResolution

CONFIGS = Path(__file__).resolve().parent.parent / "configs"
SHARED_DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data"


def scratch_mask(height: int, width: int, seed: int, strokes: int = 24) -> np.ndarray:
    """White (observed) everywhere but ``strokes`` random lines 2 to 6 pixels wide."""
    rng = random.Random(seed)
    mask = Image.new("L", (width, height), 255)
    draw = ImageDraw.Draw(mask)
    for _ in range(strokes):
        points = [(rng.uniform(0, width), rng.uniform(0, height)) for _ in range(3)]
        draw.line(points, fill=0, width=rng.randint(2, 6))
    return np.asarray(mask)


def write_files(root: Path, image: str, size: int, digits: int, seed: int, data_root: str) -> dict[str, Path]:
    """The degraded files, as a user would bring them; returns their paths."""
    clean = NaturalImages([image], size, 3)[0]  # (3, size, size) in [0, 1], 8-bit values
    write_png(root / "clean" / f"{image}.png", clean)
    noisy = Denoising(clean.shape, noise_sigma=25 / 255, seed=0).measure(clean[None], torch.tensor([0]))
    write_png(root / "noisy" / f"{image}.png", noisy.view_as(clean).clamp(0, 1))  # 8 bits, clipped
    mask = scratch_mask(size, size, seed)
    Image.fromarray(mask).save(root / "mask.png")
    write_png(root / "scratched" / f"{image}.png", clean * torch.from_numpy(mask > 0))
    low = SuperResolution(clean.shape, factor=4).downsample(clean[None])[0]
    write_png(root / "low" / f"{image}.png", low.clamp(0, 1))

    mnist = MNISTDataModule(root=data_root, train=False)
    dataset = mnist.load_images()
    indices = sorted(np.random.default_rng(seed).choice(len(dataset), digits, replace=False).tolist())
    x = torch.stack([dataset[i] for i in indices]).double()
    m = round(0.25 * x[0].numel())
    matrix = np.random.default_rng(seed).normal(0, 1 / np.sqrt(m), (m, x[0].numel()))
    np.save(root / "A.npy", matrix)
    np.save(root / "y.npy", x.flatten(1).numpy() @ matrix.T)
    np.save(root / "digits.npy", x.numpy())
    return {"indices": indices}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="runs/own_data")
    parser.add_argument("--image", default="astronaut", help="a skimage.data photo (see NaturalImagesDataModule)")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--digits", type=int, default=8)
    parser.add_argument("--seed", type=int, default=2026, help="seed of the mask, the digits and the matrix")
    parser.add_argument("--tasks", nargs="+", default=["cs", "denoise", "inpaint", "superres"])
    parser.add_argument("--data-root", default=resolve_root(None) if os.environ.get(DATA_ENV_VAR) else str(SHARED_DATA),
                        help="the folder holding MNIST/raw (default: $DIP_LIGHTNING_DATA, else ../shared/data)")
    parser.add_argument("--iterations", type=int, default=None, help="override the configs' budgets (smoke tests)")
    args = parser.parse_args()
    budget = [] if args.iterations is None else ["--model.iterations", str(args.iterations)]
    out = Path(args.out)
    files = out / "files"
    for folder in ("clean", "noisy", "scratched", "low"):
        (files / folder).mkdir(parents=True, exist_ok=True)
    chosen = write_files(files, args.image, args.size, args.digits, args.seed, args.data_root)
    print(f"files in {files}; MNIST test digits {chosen['indices']} (seed {args.seed})", flush=True)
    observed = ["--data", "dip_lightning.data.ObservedImages", "--data.references", str(files / "clean")]
    runs = {
        "denoise": [
            ("DIP, simulated noise on the clean photo", "denoise_dip",
             ["--data.images", f"[{args.image}]", "--data.size", str(args.size)]),
            ("DIP, noisy 8-bit PNG", "denoise_dip", [*observed, "--data.root", str(files / "noisy")]),
            ("TV (Chambolle), noisy 8-bit PNG", "denoise_tv", [*observed, "--data.root", str(files / "noisy")]),
            ("NL-means, noisy 8-bit PNG", "denoise_nlmeans", [*observed, "--data.root", str(files / "noisy")]),
        ],
        "inpaint": [
            (f"{method}, scratched PNG + mask PNG", f"inpaint_{config}",
             [*observed, "--data.root", str(files / "scratched"), "--model.operator.mask", str(files / "mask.png")])
            for method, config in (("DIP", "dip"), ("biharmonic", "biharmonic"))
        ],
        "superres": [
            (f"{method}, x4 low-resolution PNG", f"superres_{config}",
             [*observed, "--data.root", str(files / "low"), "--data.scale", "4"])
            for method, config in (("DIP", "dip"), ("bicubic", "bicubic"))
        ],
    }
    lines = [f"Own-data runs of `python scripts/own_data_table.py --out {args.out}` ({args.image}, "
             f"{args.size}x{args.size}, colour). PSNR / SSIM against the clean photo, which the runs get "
             "only for the metrics.\n", "| task | method and input | PSNR (dB) | SSIM | run (s) |", "|---|---|---|---|---|"]
    for task in [t for t in ("denoise", "inpaint", "superres") if t in args.tasks]:
        for label, config, overrides in runs[task]:
            folder = out / task / (config + ("_simulated" if "simulated" in label else ""))
            iterative = config.endswith(("_dip", "_dd"))  # the classical methods are one step, with no budget
            result = run_fit(CONFIGS / f"{config}.yaml", folder, [*overrides, *(budget if iterative else [])], reuse=True)
            summary = result["summary"]
            lines.append(f"| {task} | {label} | {summary['psnr_mean']:.2f} | {summary['ssim_mean']:.3f} | "
                         f"{summary['wall_seconds']:.0f} |")
            print(lines[-1], flush=True)
    if "cs" in args.tasks:
        common = ["--model.operator.matrix", str(files / "A.npy"), *budget]
        simulated = run_fit(CONFIGS / "mnist_cs_netgd.yaml", out / "cs" / "simulated",
                            [*common, "--data.root", args.data_root, "--data.indices", str(chosen["indices"]),
                             "--data.num_images", str(args.digits)],
                            reuse=True)
        measured = run_fit(CONFIGS / "mnist_cs_netgd.yaml", out / "cs" / "measured",
                           [*common, "--data", "dip_lightning.data.MeasuredVectors", "--data.root", str(files / "y.npy"),
                            "--data.image_shape", "[1, 28, 28]", "--data.references", str(files / "digits.npy"),
                            "--data.ids", str(chosen["indices"])],
                           reuse=True)
        gap = max(abs(float(a["nmse"]) - float(b["nmse"])) for a, b in zip(simulated["rows"], measured["rows"]))
        for label, result in (("simulated y = A x with A.npy", simulated), ("y.npy and A.npy", measured)):
            nmse = sorted(float(r["nmse"]) for r in result["rows"])
            lines.append(f"| cs f=0.25, {args.digits} digits | Net-GD, {label} | nMSE mean {np.mean(nmse):.4f}, median "
                         f"{np.median(nmse):.4f}, worst {nmse[-1]:.4f} | | {result['summary']['wall_seconds']:.0f} |")
            print(lines[-1], flush=True)
        lines.append(f"\nLargest per-digit nMSE difference between the two compressive-sensing runs: {gap:.2e}.")
        print(lines[-1], flush=True)
    (out / "table.md").write_text("\n".join(lines) + "\n")
    print(f"written to {out / 'table.md'}")


if __name__ == "__main__":
    main()
