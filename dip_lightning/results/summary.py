"""The summary of a run: means and medians over its images, what ran, where and how long."""

from __future__ import annotations

import math
import resource
import statistics
import sys
from typing import Any

import torch


def peak_memory(device: torch.device) -> dict[str, float]:
    """This process's peak resident memory in MB (what the operating system saw), and on a GPU the
    peak memory PyTorch allocated there."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / (2**20 if sys.platform == "darwin" else 2**10)
    memory = {"peak_memory_mb": round(peak, 1)}
    if device.type == "cuda":
        memory["peak_gpu_memory_mb"] = round(torch.cuda.max_memory_allocated(device) / 2**20, 1)
    return memory


def summarize(rows: list[dict[str, Any]], **context: Any) -> dict[str, Any]:
    """Counts, means and medians of the per-image ``rows`` (results.csv's), followed by ``context`` (wall time,
    memory, method, dataset). Diverged images are left out of the means; suspect ones count."""
    ok = [row for row in rows if row["status"] != "diverged"]
    values = {key: [row[key] for row in ok if math.isfinite(row[key])] for key in ("nmse", "psnr", "ssim", "residual")}

    def mean(key: str) -> float:
        return statistics.fmean(values[key]) if values[key] else float("nan")

    return {
        "num_images": len(rows),
        "num_diverged": len(rows) - len(ok),
        "num_suspect": sum(row["status"] == "suspect" for row in rows),
        "num_rescued": sum(row["rounds"] > 0 for row in rows),  # images given at least one rescue round
        "num_with_reference": len(values["nmse"]),
        "nmse_mean": mean("nmse"),
        "nmse_median": statistics.median(values["nmse"]) if values["nmse"] else float("nan"),
        "psnr_mean": mean("psnr"),
        "ssim_mean": mean("ssim"),
        "residual_mean": mean("residual"),
        "image_seconds_total": sum(row["seconds"] for row in rows),
        **context,
    }


def one_line(summary: dict[str, Any]) -> str:
    """The summary as the line a run prints at its end."""
    quality = (f"nMSE mean {summary['nmse_mean']:.4g} (median {summary['nmse_median']:.4g}), "
               f"PSNR {summary['psnr_mean']:.2f} dB, SSIM {summary['ssim_mean']:.3f}, "
               if summary["num_with_reference"] else "no reference images, ")
    return (f"{summary['num_images']} images, {quality}measurement residual {summary['residual_mean']:.4g}, "
            f"{summary['wall_seconds']:.1f} s")
