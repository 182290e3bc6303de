"""PSNR of the reconstruction against the iteration, for one config: how long to fit before an untrained
prior starts fitting the noise, and where the early-stopping rule stops.

Example (the README's denoising curve)::

    python scripts/psnr_curve.py --config configs/denoise_dip.yaml --iterations 3000 --every 50 \\
        --out runs/curves/denoise_dip_camera -- --data.images "[camera]" --data.channels 1 \\
        --model.early_stop.patience 400

The model and data are built exactly as ``dip-lightning fit --config ...`` builds them; the
first selected image is fitted for ``--iterations`` outer iterations (ignoring the stopping rule, so the
whole curve is seen), and every ``--every`` iterations the PSNR of the reconstruction (with its
averaging and data consistency) and of the raw network output is recorded, per image. Where
``--model.early_stop`` is set, the iteration at which each image would have stopped and the
PSNR of what it would have kept are marked. Writes ``OUT.csv`` and ``OUT.png``.
"""

from __future__ import annotations

import argparse
import csv
import time
from pathlib import Path

import torch

from dip_lightning.cli import instantiate
from dip_lightning.metrics import image_quality


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True)
    parser.add_argument("--iterations", type=int, required=True)
    parser.add_argument("--every", type=int, default=50)
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--out", default="runs/curves/curve")
    parser.add_argument("extra", nargs="*", help="further CLI overrides, after --")
    args = parser.parse_args()

    overrides = ["--model.iterations", str(args.iterations), "--data.chunk_size", "1"]
    model, datamodule = instantiate(args.config, overrides + (["--data.root", args.data_root] if args.data_root else [])
                                    + args.extra)
    batch = next(iter(datamodule.test_dataloader()))  # the first selected image
    indices = batch["index"].tolist()
    rows, stops = [], {}
    started = time.perf_counter()

    @torch.no_grad()
    def record(chunk, loss) -> None:
        stopping = getattr(chunk.state, "stopping", None)
        for b in range(chunk.size) if stopping is not None else []:
            if b not in stops and stopping.since[b] >= model.early_stop.patience:
                kept = model.resolve_sign(model.reconstruction(chunk), chunk.target)
                patience = model.early_stop.patience
                stops[b] = (chunk.iteration - patience, float(image_quality(kept, chunk.target)["psnr"][b]))
        if chunk.iteration % args.every:
            return
        if stopping is not None:  # the curve shows the current estimate, not the kept one
            chunk.state.stopping = None
        reconstruction = model.resolve_sign(model.reconstruction(chunk), chunk.target)
        if stopping is not None:
            chunk.state.stopping = stopping
        network = model.prior(chunk.decoders) if hasattr(model, "prior") else reconstruction
        psnr = image_quality(reconstruction, chunk.target)["psnr"]
        raw = image_quality(chunk.combine(network), chunk.target)["psnr"]
        for b, index in enumerate(indices):
            rows.append({"iteration": chunk.iteration, "index": index, "psnr": float(psnr[b]),
                         "network_psnr": float(raw[b]), "seconds": round(time.perf_counter() - started, 1)})
        print(f"{chunk.iteration}: PSNR " + ", ".join(f"{float(p):.2f}" for p in psnr) + " dB "
              f"({time.perf_counter() - started:.0f} s)", flush=True)

    model.reconstruct(batch, on_step=record, stop_early=False)  # the whole curve, past any stopping rule

    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out.with_suffix(".csv"), "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(6.4, 4.0))
    for b, index in enumerate(indices):
        mine = [r for r in rows if r["index"] == index]
        line, = axes.plot([r["iteration"] for r in mine], [r["psnr"] for r in mine], label=f"image {index}: reconstruction")
        axes.plot([r["iteration"] for r in mine], [r["network_psnr"] for r in mine], ":", color=line.get_color(),
                  label=f"image {index}: network output")
        if b in stops:
            axes.plot(*stops[b], "o", color=line.get_color(), label=f"image {index}: early stop (kept estimate)")
            print(f"image {index}: the stopping rule keeps iteration {stops[b][0]}, PSNR {stops[b][1]:.2f} dB")
    axes.set_xlabel("iteration")
    axes.set_ylabel("PSNR (dB)")
    axes.set_title(f"{Path(args.config).stem} {' '.join(args.extra)}", fontsize=8)
    axes.grid(alpha=0.3)
    axes.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(out.with_suffix(".png"), dpi=150)
    print(f"written to {out.with_suffix('.csv')} and {out.with_suffix('.png')}")


if __name__ == "__main__":
    main()
