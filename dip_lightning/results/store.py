"""The run folder: what a run writes as chunks finish, what identifies the run, and the final files derived
from the chunks.

Layout (``root``): ``chunks/run.json`` (the run's identity), ``chunks/chunk-<first index>.pt`` and ``.csv`` (one
pair per finished chunk; the ``.csv`` marks it finished, the ``.pt`` holds its tensors, its rows and the identity of
the run that wrote it), ``chunks/damaged/`` (chunks found damaged, set aside), ``chunks/seconds.json`` (the wall time
of each invocation), ``reconstructions/<name>.png``, and the final files ``results.csv``, ``summary.json``,
``reconstructions.pt`` and ``reconstructions.png``, derived from the chunks. ``.lock`` is held by the run using the
folder.
"""

from __future__ import annotations

import csv
import fcntl
import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from torchvision.utils import make_grid, save_image

from dip_lightning.chunks import ChunkResult
from dip_lightning.errors import DipLightningError
from dip_lightning.files import write_png

COLUMNS = ["index", "name", "nmse", "psnr", "ssim", "residual", "seconds", "status", "rounds", "agreeing"]
FLOAT_COLUMNS = ["nmse", "psnr", "ssim", "residual", "seconds"]


def user_file_mode() -> int:
    """The permissions a new file gets under the process's umask (``open`` gives 0o666 & ~umask; mkstemp 0o600)."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def write_atomically(path: Path, write: Callable[[Any], None], mode: str = "w") -> None:
    """Write through a temporary file in the same folder, then rename: readers never see half a file. The file gets
    the permissions of any other new file (the user's umask), so that others on a shared cluster can read it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, mode, **({"newline": ""} if "b" not in mode else {})) as handle:
            write(handle)
        os.chmod(tmp, user_file_mode())
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    def write(handle) -> None:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(sorted(rows, key=lambda row: row["index"]))

    write_atomically(path, write)


def read_csv(path: Path) -> list[dict[str, Any]]:
    """Rows of a results CSV with their types: index, rounds and agreeing as integers (agreeing None where
    empty), the metrics and seconds as floats. Files of older runs may lack ``rounds`` (0) and ``agreeing``."""
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    return [{**row, "index": int(row["index"]), **{k: float(row[k]) for k in FLOAT_COLUMNS},
             "rounds": int(row.get("rounds") or 0), "agreeing": int(row["agreeing"]) if row.get("agreeing") else None}
            for row in rows]


def comparison_grid(*groups: Tensor | None, per_row: int = 8) -> Tensor:
    """Rows of up to ``per_row`` images of the first group, each row followed by the matching
    images of the other groups (e.g. targets, measurements, reconstructions); None groups are left out."""
    groups = [g for g in groups if g is not None]
    count = len(groups[0])
    rows = []
    per_row = max(1, min(per_row, count))
    for start in range(0, count, per_row):
        for images in (group[start : start + per_row] for group in groups):
            blank = torch.ones(per_row - len(images), *images.shape[1:])
            rows.append(torch.cat([images.clamp(0, 1), blank]))
    return make_grid(torch.cat(rows), nrow=per_row, padding=2, pad_value=1.0)


HELD: dict[str, Any] = {}  # the folders this process holds, by resolved path: a process never blocks itself


def first_process() -> bool:
    """Whether this process is the first of its run (global rank 0 as Lightning, torchrun and SLURM number them),
    known before the Trainer starts: the ranks of one run are one owner of its folder."""
    return all(int(os.environ.get(name) or 0) == 0
               for name in ("RANK", "LOCAL_RANK", "NODE_RANK", "GROUP_RANK", "SLURM_PROCID"))


class RunFolder:
    """A run's folder (see the module docstring): written chunk by chunk by every process, read back to resume
    and to derive the final files."""

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)
        self.chunks = self.root / "chunks"

    # ----------------------------------------------------------------------------- owning the folder
    def lock(self) -> None:
        """Hold the folder for this run until :meth:`release` or the end of the process (an OS lock: a crash never
        leaves it held); a folder another process holds is refused. Only the first process of a run takes it
        (:func:`first_process`), so the ranks of one run are one owner."""
        key = str(self.root.resolve())
        if not first_process() or key in HELD:
            return
        self.root.mkdir(parents=True, exist_ok=True)
        handle = open(self.root / ".lock", "a+")  # noqa: SIM115 (held open for the run)
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            handle.close()
            raise DipLightningError(
                f"{self.root} is in use by another dip-lightning run ({holder}): wait for it to end, or choose another "
                "--trainer.default_root_dir") from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}, started {time.strftime('%Y-%m-%d %H:%M:%S')}")
        handle.flush()
        HELD[key] = handle

    def release(self) -> None:
        """Let other runs use the folder (the run that held it is over)."""
        handle = HELD.pop(str(self.root.resolve()), None)
        if handle is not None:
            fcntl.flock(handle, fcntl.LOCK_UN)
            handle.close()

    def check_writable(self) -> None:
        """Refuse, before any work, a folder this process cannot write to (read-only, no permission, a file)."""
        probe = self.root / f".probe-{os.getpid()}"
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            probe.write_text("")
            probe.unlink()
        except OSError as error:
            raise DipLightningError(
                f"cannot write to {self.root} ({error.strerror or error}): choose a folder you can write to with "
                "--trainer.default_root_dir") from error

    # ----------------------------------------------------------------------------- identity and resuming
    def claim(self, identity: dict[str, Any]) -> None:
        """Make the folder this run's: record ``identity`` (the method and data settings that decide every
        image's result), or check it against the one recorded; a folder of another configuration is refused
        before any work. Every process may call it (the record is written atomically, the same by each)."""
        identity = json.loads(json.dumps(identity, default=str))
        saved = self.chunks / "run.json"
        if saved.is_file():
            previous = json.loads(saved.read_text())
            if previous != identity:
                changed = sorted(k for k in identity.keys() | previous.keys() if identity.get(k) != previous.get(k))
                raise DipLightningError(
                    f"{self.root} holds results of another configuration (differs in: {', '.join(changed)}); choose "
                    f"another --trainer.default_root_dir, or delete {self.chunks} to start over")
            return
        write_atomically(saved, lambda handle: json.dump(identity, handle, indent=2))

    def identity(self) -> str:
        """A digest of the recorded identity, stamped into every chunk this run writes."""
        return hashlib.sha256((self.chunks / "run.json").read_bytes()).hexdigest()[:16]

    def damage(self, part: Path) -> str | None:
        """What is wrong with the finished chunk whose rows are ``part`` (``chunk-*.csv``), or None if it is whole:
        its rows parse, its tensors load and hold the same images, and it was written by this configuration."""
        try:
            with open(part, newline="") as handle:
                header = next(csv.reader(handle), [])
            if header != COLUMNS:
                return "its header is not that of a results file"
            rows = read_csv(part)
        except (ValueError, KeyError, TypeError, csv.Error) as error:
            return f"its rows do not parse ({type(error).__name__}: {error})"
        if not rows:
            return "it has no rows"
        tensors = part.with_suffix(".pt")
        try:
            payload = torch.load(tensors)
        except FileNotFoundError:
            return f"{tensors.name} is missing"
        except Exception as error:  # noqa: BLE001 (any damage to the file)
            return f"{tensors.name} does not load ({type(error).__name__})"
        index, reconstruction = payload.get("index"), payload.get("reconstruction")
        if index is None or reconstruction is None or len(index) != len(reconstruction):
            return f"{tensors.name} is incomplete"
        if sorted(index.tolist()) != sorted(row["index"] for row in rows):
            return f"its rows ({len(rows)} images) and {tensors.name} ({len(index)} images) do not match"
        if payload.get("run") != self.identity():
            return "another configuration wrote it"
        return None

    def set_aside_damaged(self) -> list[str]:
        """Move every damaged chunk (:meth:`damage`) to ``chunks/damaged/``, so that its images are reconstructed
        again; returns one line per chunk saying what was wrong. Only the first process of a run moves files."""
        lines = []
        for part in sorted(self.chunks.glob("chunk-*.csv")):
            problem = self.damage(part)
            if problem is None:
                continue
            lines.append(f"{part} is damaged ({problem}): its images will be reconstructed again")
            if first_process():
                (self.chunks / "damaged").mkdir(exist_ok=True)
                for file in (part, part.with_suffix(".pt")):
                    if file.exists():
                        shutil.move(str(file), self.chunks / "damaged" / file.name)
        return lines

    def rows(self) -> list[dict[str, Any]]:
        """Every finished chunk's rows, each image once (the first chunk that holds it, by name: two runs with
        different chunk sizes may both have reconstructed it, the same way)."""
        rows, seen = [], set()
        for part in sorted(self.chunks.glob("chunk-*.csv")):
            try:
                found = read_csv(part)
            except (ValueError, KeyError, TypeError, csv.Error):
                continue  # damaged: set aside when the next run starts
            rows += [row for row in found if row["index"] not in seen]
            seen |= {row["index"] for row in found}
        return rows

    def finished(self) -> set[int]:
        """The dataset indices of the images already reconstructed."""
        return {row["index"] for row in self.rows()}

    def wandb_id(self) -> str:
        """The id of this folder's W&B run, made on the first invocation and kept in ``chunks/wandb_id``, so that a
        resumed run logs into the same W&B run (only the first process of a run writes it)."""
        saved = self.chunks / "wandb_id"
        if saved.is_file():
            return saved.read_text().strip()
        run_id = hashlib.sha256(f"{self.root.resolve()} {time.time()} {os.getpid()}".encode()).hexdigest()[:8]
        if first_process():
            write_atomically(saved, lambda handle: handle.write(run_id))
        return run_id

    def add_seconds(self, seconds: float) -> float:
        """Record this invocation's wall time; returns the run's total over all its invocations."""
        saved = self.chunks / "seconds.json"
        spent = json.loads(saved.read_text()) if saved.is_file() else []
        spent.append(round(seconds, 3))
        write_atomically(saved, lambda handle: json.dump(spent, handle))
        return sum(spent)

    # ----------------------------------------------------------------------------- as chunks finish
    def write_chunk(self, result: ChunkResult, names: list[str], png_bits: int = 8) -> None:
        """A finished chunk's files: every reconstruction as ``reconstructions/<name>.png``, the chunk's tensors
        and rows, then ``results.csv`` rebuilt from every chunk so far."""
        for stem, image in zip(names, result.reconstruction):
            write_png(self.root / "reconstructions" / f"{stem}.png", image, png_bits)
        rows = [{**row, "name": stem} for row, stem in zip(result.rows(), names)]
        payload = {"index": result.index, "reconstruction": result.reconstruction, "rows": rows, "run": self.identity()}
        for key, value in (("target", result.target), ("measured", result.measured)):
            if value is not None:
                payload[key] = value
        name = f"chunk-{int(result.index.min()):09d}"
        write_atomically(self.chunks / f"{name}.pt", lambda handle: torch.save(payload, handle), mode="wb")
        write_csv(self.chunks / f"{name}.csv", rows)  # the .csv marks the chunk finished
        write_csv(self.root / "results.csv", self.rows())

    def tensors(self, indices: set[int]) -> dict[int, dict[str, Tensor]]:
        """The saved tensors (``reconstruction``, and ``target`` / ``measured`` where kept) of the images ``indices``,
        by index, read from the chunk files that hold them."""
        found: dict[int, dict[str, Tensor]] = {}
        for part in sorted(self.chunks.glob("chunk-*.pt")):
            wanted = indices - found.keys()
            if not wanted:
                break
            payload = torch.load(part)
            for b, index in enumerate(payload["index"].tolist()):
                if index in wanted:
                    found[index] = {key: value[b] for key, value in payload.items()
                                    if torch.is_tensor(value) and key != "index"}
        return found

    # ----------------------------------------------------------------------------- at the end
    def write_final(self, rows: list[dict[str, Any]], summary: dict[str, Any], max_grid_images: int = 32) -> None:
        """``results.csv``, ``summary.json``, ``reconstructions.pt`` (``{"index": (N,), "reconstruction": (N, C, H,
        W)}`` in index order) and ``reconstructions.png`` (the first ``max_grid_images`` references, measurements
        where they are images, and reconstructions, in rows), from the chunk files."""
        write_csv(self.root / "results.csv", rows)
        write_atomically(self.root / "summary.json", lambda handle: json.dump(summary, handle, indent=2))
        kept = {row["index"] for row in rows}
        parts = []
        for part in sorted(self.chunks.glob("chunk-*.csv")):
            try:
                holds = {row["index"] for row in read_csv(part)}
            except (ValueError, KeyError, TypeError, csv.Error):
                continue
            if not holds & kept:
                continue
            payload = torch.load(part.with_suffix(".pt"))
            take = torch.tensor([int(i) in kept for i in payload["index"].tolist()], dtype=torch.bool)
            kept -= set(payload["index"][take].tolist())  # an image held by two chunks: the first one's
            parts.append({key: value[take] for key, value in payload.items() if torch.is_tensor(value)})
        index = torch.cat([p["index"] for p in parts])
        order = index.argsort()
        reconstructions = torch.cat([p["reconstruction"] for p in parts])[order]
        saved = {"index": index[order], "reconstruction": reconstructions}
        write_atomically(self.root / "reconstructions.pt", lambda handle: torch.save(saved, handle), mode="wb")
        shown = order[:max_grid_images]

        def gathered(key: str) -> Tensor | None:
            return torch.cat([p[key] for p in parts])[shown] if all(key in p for p in parts) else None

        save_image(comparison_grid(gathered("target"), gathered("measured"), reconstructions[:max_grid_images]),
                   self.root / "reconstructions.png")
