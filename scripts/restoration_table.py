"""Denoising, inpainting and super-resolution: untrained priors against classical methods, on the same images
and measurements; prints (and writes) a markdown table of per-image PSNR / SSIM and each run's wall time.

Example (the README's tables)::

    python scripts/restoration_table.py --task denoise --out runs/restoration
    python scripts/restoration_table.py --task denoise --images camera --channels 1 --out runs/restoration

Each config is one ``dip-lightning fit`` run (in this process, through the real CLI) of
``configs/<task>_<method>.yaml`` with its default budget, on ``--images`` (default: the configs'
own images) as one chunk. A run's folder is ``OUT/<task>/<images>/<config>``; running the same
command again reuses finished runs. Writes ``OUT/<task>/<images>/table.md`` and ``results.csv``
(task, method, image, psnr, ssim, seconds).
"""

from __future__ import annotations

import argparse
import csv
import json
import time
from pathlib import Path

from dip_lightning.cli import instantiate, run_fit

CONFIGS = Path(__file__).resolve().parent.parent / "configs"
METHODS = {
    "denoise": ["dip", "dd", "tv", "wavelet", "nlmeans"],
    "inpaint": ["dip", "dd", "biharmonic"],
    "superres": ["dip", "dd", "bicubic"],
}
LABELS = {"dip": "DIP (skip network)", "dd": "Deep Decoder", "tv": "TV (Chambolle)", "wavelet": "wavelet (BayesShrink)",
          "nlmeans": "non-local means", "biharmonic": "biharmonic", "bicubic": "bicubic"}


def run(config: Path, images: list[str] | None, channels: int | None, extra: list[str], out: Path) -> dict:
    """One reconstruction through the CLI (skipped when ``out`` already holds its summary)."""
    arguments = list(extra)
    if images:
        arguments += ["--data.images", json.dumps(images), "--data.num_images", str(len(images)),
                      "--data.chunk_size", str(len(images))]
    if channels:
        arguments += ["--data.channels", str(channels)]
    return run_fit(config, out, arguments, reuse=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", choices=sorted(METHODS), required=True)
    parser.add_argument("--methods", nargs="+", default=None, help="a subset of the task's methods")
    parser.add_argument("--images", nargs="+", default=None, help="skimage.data names (default: the configs')")
    parser.add_argument("--channels", type=int, choices=[1, 3], default=None, help="1 grayscale, 3 colour")
    parser.add_argument("--out", default="runs/restoration")
    parser.add_argument("extra", nargs="*", help="further CLI overrides for every run, after --")
    args = parser.parse_args()

    methods = args.methods or METHODS[args.task]
    _, data = instantiate(CONFIGS / f"{args.task}_{methods[0]}.yaml")  # the configs' images and channels
    images = args.images or data.image_names
    channels = args.channels or data.channels
    folder = Path(args.out) / args.task / f"{'-'.join(images)}_c{channels}"
    results = []
    for method in methods:
        config = CONFIGS / f"{args.task}_{method}.yaml"
        started = time.perf_counter()
        outcome = run(config, images, channels, args.extra, folder / config.stem)
        seconds = outcome["summary"]["wall_seconds"]
        for row in outcome["rows"]:
            results.append({"task": args.task, "method": method, "image": images[int(row["index"])],
                            "psnr": float(row["psnr"]), "ssim": float(row["ssim"]), "seconds": round(seconds, 1)})
        print(f"[{config.stem}] " + ", ".join(f"{r['image']} {r['psnr']:.2f} dB / {r['ssim']:.3f}"
                                              for r in results if r["method"] == method)
              + f"; run {seconds:.0f} s ({time.perf_counter() - started:.0f} s here)", flush=True)

    best = {image: max(r["psnr"] for r in results if r["image"] == image) for image in images}
    header = "| method | " + " | ".join(f"{image} PSNR / SSIM" for image in images) + " | run (s) |"
    lines = [f"{args.task}, {'colour' if channels == 3 else 'grayscale'} {', '.join(images)}:", "", header,
             "|---" * (len(images) + 2) + "|"]
    for method in methods:
        rows = {r["image"]: r for r in results if r["method"] == method}
        cells = [(f"**{rows[i]['psnr']:.2f}**" if rows[i]["psnr"] == best[i] else f"{rows[i]['psnr']:.2f}")
                 + f" / {rows[i]['ssim']:.3f}" for i in images]
        lines.append(f"| {LABELS[method]} | " + " | ".join(cells) + f" | {rows[images[0]]['seconds']:.0f} |")
    table = "\n".join(lines) + "\n"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "table.md").write_text(table)
    with open(folder / "results.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(results[0]))
        writer.writeheader()
        writer.writerows(results)
    print("\n" + table + f"\nwritten to {folder.resolve()}/ (table.md, results.csv)")


if __name__ == "__main__":
    main()
