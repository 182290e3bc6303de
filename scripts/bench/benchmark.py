
"""Throughput of batched reconstruction versus one image at a time (the authors' way).

Example (the README's CPU table)::

    python scripts/bench/benchmark.py --config configs/mnist_cs_netgd.yaml --chunk-sizes 1,16,64 \
        --iterations 200 --data-root ../shared/data --out runs/benchmark/mnist_cs_netgd.json

For each chunk size B, B images are reconstructed together (``batched``); then the same
images are reconstructed one after another with a chunk of one (``loop``, at most
``--loop-images`` of them, timed per image). Both use the config as resolved by the real CLI
(restarts, optimizer, ...) with the same number of iterations, and go through the algorithm's
own chunk loop (``ReconstructionModule.reconstruct``), without the Trainer; the time per outer iteration
leaves out each chunk's first (warm-up) iteration.
Each measurement runs in a fresh process, so the peak memory is its own: peak resident memory
on the CPU, ``torch.cuda.max_memory_allocated`` on a GPU. Writes a JSON list of records and a
markdown table beside it (``.md``), and prints the table.

End to end (``--end-to-end``): what a user waits for. Each ``--row "LABEL :: ARGS"`` is one real
``dip-lightning fit ARGS`` in a fresh process (Trainer, results files, offline W&B run), timed
from process start to exit; ARGS starting with ``@DIR`` run the package and configs of the checkout DIR,
from DIR (e.g. a ``git worktree`` of an older commit, for before/after in one run; give data paths
as absolute paths), and ARGS starting with
``reference_loop`` run ``scripts/bench/reference_loop.py`` (the one-image-at-a-time baseline) with the
rest of ARGS. Prints and writes images/s, seconds per image, mean / median / worst nMSE::

    python scripts/bench/benchmark.py --end-to-end --out runs/speed/mnist.json \
        --row "before :: @/tmp/before --config configs/mnist_cs_netgd.yaml --data.root ../shared/data" \
        --row "now :: --config configs/mnist_cs_netgd.yaml --data.root ../shared/data"
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import resource
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch


def build(config: str, chunk_size: int | None, iterations: int, data_root: str | None, extra: list[str]):
    """The model and datamodule exactly as ``dip-lightning fit --config ...`` would build them, with ``iterations``
    outer iterations (and ``chunk_size`` images per chunk, where not None)."""
    from dip_lightning.cli import instantiate

    overrides = ["--model.iterations", str(iterations)]
    overrides += ["--data.chunk_size", str(chunk_size)] if chunk_size is not None else []
    overrides += ["--data.root", data_root] if data_root else []
    return instantiate(config, overrides + extra)


def measure(mode: str, chunk_size: int, num_images: int, args: argparse.Namespace, extra: list[str]) -> dict:
    device = torch.device(args.device)
    per_chunk = chunk_size if mode == "batched" else 1
    model, datamodule = build(args.config, per_chunk, args.iterations, args.data_root,
                              [*extra, "--data.num_images", str(num_images)])
    if len(datamodule.selection) < num_images:
        sys.exit(f"the config selects {len(datamodule.selection)} images, fewer than {num_images}: pass --data.num_images")
    model = model.to(device)
    if hasattr(model, "optimizer"):
        model.optimizer()  # the optimizer is built outside the timed region
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)

    def synchronize():
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    step_times: list[float] = []  # per chunk: (first step done, last step done)

    def on_step(chunk, loss) -> None:
        for mark in (1, args.iterations):  # both marks at once where there is a single iteration
            if chunk.iteration == mark:
                synchronize()
                step_times.append(time.perf_counter())

    nmse = []
    started = time.perf_counter()
    for batch in datamodule.test_dataloader():
        result = model.reconstruct({k: v.to(device) for k, v in batch.items()}, on_step=on_step, stop_early=False)
        nmse += result.metrics["nmse"].tolist()
    synchronize()
    seconds = time.perf_counter() - started
    if device.type == "cuda":
        peak_mb = torch.cuda.max_memory_allocated(device) / 2**20
    else:
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    # the first step of a chunk (compilation, warm-up) is left out of the time per step
    steady = sum(last - first for first, last in zip(step_times[::2], step_times[1::2]))
    chunks = len(step_times) // 2
    return {
        "mode": mode, "chunk_size": chunk_size, "num_images": len(nmse), "iterations": args.iterations, "images_per_second": len(nmse) / seconds, "seconds_per_iteration": steady / max(1, (args.iterations - 1) * chunks), "peak_memory_mb": peak_mb, "nmse_mean": sum(nmse) / len(nmse), "device": torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)", "config": args.config, "algorithm": model.algorithm, "restarts": model.estimates_per_image()
    }


def table(records: list[dict]) -> str:
    lines = ["| mode | chunk | images | images/s | s / outer iteration | peak memory (MB) | nMSE mean | speed-up vs loop |",
             "|---|---|---|---|---|---|---|---|"]
    loop = {r["chunk_size"]: r["images_per_second"] for r in records if r["mode"] == "loop"}
    for r in records:
        speedup = r["images_per_second"] / loop[r["chunk_size"]] if r["chunk_size"] in loop else float("nan")
        lines.append(
            f"| {r['mode']} | {r['chunk_size']} | {r['num_images']} | {r['images_per_second']:.3f} | "
            f"{r['seconds_per_iteration'] * 1e3:.2f} ms | {r['peak_memory_mb']:.0f} | {r['nmse_mean']:.4f} | "
            f"{speedup:.1f}x |"
        )
    device = records[0]["device"] if records else "?"
    head = (f"{records[0]['algorithm']} with `{records[0]['config']}` ({records[0]['restarts']} restarts per image), "
            f"{records[0]['iterations']} iterations, on {device}" if records else "")
    return head + "\n\n" + "\n".join(lines)


def end_to_end(label: str, arguments: str, timeout: float | None = None) -> dict:
    """One timed ``dip-lightning fit`` (or reference loop) process; see the module docstring. A row that
    fails or runs past ``timeout`` seconds is returned with its ``error`` (the other rows still run)."""
    words = shlex.split(arguments)
    env = {**os.environ, "WANDB_SILENT": "true", "PYTHONWARNINGS": "ignore"}
    cwd = None
    with tempfile.TemporaryDirectory() as root:
        if words and words[0] == "reference_loop":
            record_file = Path(root) / "reference.json"
            command = [sys.executable, str(Path(__file__).with_name("reference_loop.py")), *words[1:],
                       "--json", str(record_file)]
        else:
            if words and words[0].startswith("@"):  # that checkout's package and configs (so relative paths are its)
                cwd = env["PYTHONPATH"] = os.path.abspath(words.pop(0)[1:])
            command = [sys.executable, "-m", "dip_lightning.cli", "fit", *words, "--trainer.default_root_dir", root,
                       "--trainer.enable_progress_bar", "false"]
        device = (torch.cuda.get_device_name(0) if torch.cuda.is_available()
                  else f"cpu ({platform.processor() or platform.machine()}, {os.cpu_count()} cores)")
        started = time.perf_counter()
        try:
            done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=cwd, timeout=timeout)
        except subprocess.TimeoutExpired:
            return {"label": label, "arguments": arguments, "device": device, "error": f"timed out after {timeout:.0f} s"}
        seconds = time.perf_counter() - started
        if done.returncode != 0:
            print(f"row {label!r} failed:\n{done.stderr[-3000:]}", file=sys.stderr, flush=True)
            return {"label": label, "arguments": arguments, "device": device, "seconds": seconds,
                    "error": (done.stderr.strip().splitlines() or [f"exit code {done.returncode}"])[-1][:300]}
        if words and words[0] == "reference_loop":
            record = json.loads(record_file.read_text())
            nmse_mean, nmse_median, nmse_worst = record["nmse_mean"], record["nmse_median"], record["nmse_worst"]
            images = record["images"]
        else:
            with open(Path(root) / "results.csv", newline="") as handle:
                rows = list(csv.DictReader(handle))
            nmse = [float(row["nmse"]) for row in rows]
            images, nmse_mean, nmse_median, nmse_worst = len(nmse), statistics.mean(nmse), statistics.median(nmse), max(nmse)
            psnr = statistics.mean(float(row["psnr"]) for row in rows)
            summary = json.loads((Path(root) / "summary.json").read_text())
            memory = {key: summary[key] for key in ("peak_memory_mb", "peak_gpu_memory_mb") if key in summary}
    return {"label": label, "arguments": arguments, "images": images, "seconds": seconds,
            "images_per_second": images / seconds, "seconds_per_image": seconds / images, "nmse_mean": nmse_mean,
            "nmse_median": nmse_median, "nmse_worst": nmse_worst, "device": device,
            **({"psnr_mean": psnr, **memory} if not (words and words[0] == "reference_loop") else {})}


def end_to_end_table(records: list[dict]) -> str:
    reference = next((r for r in records if r["arguments"].startswith("reference_loop") and "error" not in r), None)
    memory = any("peak_memory_mb" in r for r in records)  # columns of runs that recorded them
    lines = ["| run | images | wall (s) | s / image | images/s | x reference | nMSE mean | median | worst |"
             + (" PSNR (dB) | peak memory (MB) |" if memory else ""),
             "|---|---|---|---|---|---|---|---|---|" + ("---|---|" if memory else "")]
    for r in records:
        if "error" in r:
            lines.append(f"| {r['label']} | failed: {r['error'].replace('|', '/')} |  |  |  |  |  |  |  |"
                         + (" | |" if memory else ""))
            continue
        speedup = f"{r['images_per_second'] / reference['images_per_second']:.1f}x" if reference else "-"
        extra = ""
        if memory:
            gpu = f" (GPU {r['peak_gpu_memory_mb']:.0f})" if "peak_gpu_memory_mb" in r else ""
            extra = (f" {r['psnr_mean']:.2f} | {r['peak_memory_mb']:.0f}{gpu} |" if "peak_memory_mb" in r else " - | - |")
        lines.append(f"| {r['label']} | {r['images']} | {r['seconds']:.1f} | {r['seconds_per_image']:.3f} | "
                     f"{r['images_per_second']:.2f} | {speedup} | {r['nmse_mean']:.4f} | {r['nmse_median']:.4f} | "
                     f"{r['nmse_worst']:.4f} |" + extra)
    return f"end to end, process start to exit, on {records[0]['device']}\n\n" + "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", help="(per-iteration mode) the config to time")
    parser.add_argument("--end-to-end", action="store_true", help="time whole runs given by --row")
    parser.add_argument("--row", action="append", default=[], help='"LABEL :: ARGS" (end-to-end mode)')
    parser.add_argument("--budget", type=float, default=None,
                        help="(end-to-end mode) seconds for all rows: a row still running then is stopped, later rows skipped")
    parser.add_argument("--chunk-sizes", default="1,16,64", help="comma-separated, e.g. 1,16,64")
    parser.add_argument("--iterations", type=int, default=200, help="outer iterations per image (both modes)")
    parser.add_argument("--loop-images", type=int, default=8, help="images timed in the one-at-a-time loop")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--out", required=True, help="JSON file; the markdown table goes beside it")
    parser.add_argument("--single", help=argparse.SUPPRESS)  # mode,chunk_size,num_images: one measurement
    args, extra = parser.parse_known_args()

    if args.end_to_end:
        if not args.row or any(" :: " not in row for row in args.row):
            sys.exit('--end-to-end needs one or more --row "LABEL :: ARGS"')
        records = []
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        deadline = time.monotonic() + args.budget if args.budget else None
        for row in args.row:
            label, arguments = (part.strip() for part in row.split(" :: ", 1))
            left = deadline - time.monotonic() if deadline else None
            if left is not None and left < 20:
                print(f"{label}: skipped (--budget spent)", flush=True)
                continue
            records.append(end_to_end(label, arguments, timeout=left))
            r = records[-1]
            if "error" in r:
                print(f"{label}: FAILED ({r['error']})", flush=True)
            else:
                print(f"{label}: {r['images']} images in {r['seconds']:.1f} s ({r['seconds_per_image']:.3f} s / image), "
                      f"nMSE mean {r['nmse_mean']:.4f} median {r['nmse_median']:.4f} worst {r['nmse_worst']:.4f}",
                      flush=True)
            # written after every row, so a run cut short keeps what it measured
            out.write_text(json.dumps(records, indent=2))
            out.with_suffix(".md").write_text(end_to_end_table(records) + "\n")
        if records:
            print("\n" + end_to_end_table(records))
        if any("error" in r for r in records):
            sys.exit(1)
        return
    if not args.config:
        sys.exit("--config is required (or --end-to-end with --row)")

    if args.single:
        mode, chunk_size, num_images = args.single.split(",")
        print(json.dumps(measure(mode, int(chunk_size), int(num_images), args, extra)))
        return

    records = []
    for chunk_size in [int(c) for c in args.chunk_sizes.split(",")]:
        for mode, count in (("batched", chunk_size), ("loop", min(chunk_size, args.loop_images))):
            command = [sys.executable, __file__, *sys.argv[1:], "--single", f"{mode},{chunk_size},{count}"]
            done = subprocess.run(command, capture_output=True, text=True)
            if done.returncode != 0:
                sys.exit(f"{mode} chunk {chunk_size} failed:\n{done.stderr[-3000:]}")
            record = json.loads(done.stdout.strip().splitlines()[-1])
            print(f"{mode:8s} chunk {chunk_size:4d}: {record['images_per_second']:.3f} images/s, "
                  f"nMSE {record['nmse_mean']:.4f}", flush=True)
            records.append(record)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(records, indent=2))
    markdown = table(records)
    out.with_suffix(".md").write_text(markdown + "\n")
    print("\n" + markdown)


if __name__ == "__main__":
    main()
