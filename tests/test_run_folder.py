"""A run folder cannot end up wrong: final files rebuilt by a re-run, damaged chunks found and redone, one run per
folder, I/O errors as one line, files readable by others, one W&B run over the invocations."""

import json
import os
import stat
import subprocess
import sys
import time

import pytest
import torch

from dip_lightning.errors import DipLightningError
from dip_lightning.results import RunFolder
from tests.helpers import REPO, cli, read_results

pytestmark = pytest.mark.slow  # real CLI runs (a few seconds each)

FINAL = ("summary.json", "reconstructions.pt", "reconstructions.png")


def command(root, data_root, chunk_size: int = 2, *extra: str) -> list[str]:
    return ["fit", "--config", "configs/mnist_cs_netgd.yaml", "--data.root", str(data_root), "--data.num_images", "8",
            "--data.chunk_size", str(chunk_size), "--model.iterations", "40", "--model.restarts.count", "1",
            "--trainer.logger", "false", "--trainer.enable_progress_bar", "false", "--trainer.default_root_dir",
            str(root), *extra]


def run(root, data_root, chunk_size: int = 2, *extra: str) -> subprocess.CompletedProcess:
    done = cli(*command(root, data_root, chunk_size, *extra))
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def saved(root) -> dict[str, torch.Tensor]:
    return torch.load(root / "reconstructions.pt")


def test_a_rerun_rebuilds_the_final_files_equal_to_the_first(tmp_path, data_root):
    root = tmp_path / "run"
    run(root, data_root)
    first, grid = saved(root), (root / "reconstructions.png").read_bytes()
    for name in FINAL:
        (root / name).unlink()
    (root / "results.csv").write_text("damaged")
    again = run(root, data_root)
    assert "8 of 8 images already reconstructed" in again.stderr + again.stdout
    rebuilt = saved(root)
    assert torch.equal(rebuilt["index"], first["index"]) and torch.equal(rebuilt["reconstruction"], first["reconstruction"])
    assert (root / "reconstructions.png").read_bytes() == grid and sorted(read_results(root)) == list(range(8))
    summary = json.loads((root / "summary.json").read_text())
    assert summary["num_images"] == 8
    assert summary["wall_seconds"] == pytest.approx(sum(json.loads((root / "chunks" / "seconds.json").read_text())))


@pytest.mark.parametrize("damage", ["garbage", "a row cut", "a row lost", "tensors missing"])
def test_a_damaged_chunk_is_reported_and_its_images_redone(damage, tmp_path, data_root):
    root = tmp_path / "run"
    run(root, data_root)
    first = saved(root)
    part = root / "chunks" / "chunk-000000002.csv"
    lines = part.read_text().splitlines(keepends=True)
    if damage == "garbage":
        part.write_text("garbage\n")
    elif damage == "a row cut":
        part.write_text("".join(lines[:-1]) + lines[-1][: len(lines[-1]) // 2])
    elif damage == "a row lost":
        part.write_text("".join(lines[:-1]))
    else:
        part.with_suffix(".pt").unlink()
    for name in FINAL:
        (root / name).unlink()
    again = run(root, data_root)
    reported = [line for line in again.stderr.splitlines() if "chunk-000000002.csv is damaged" in line]
    assert len(reported) == 1 and "reconstructed again" in reported[0]
    rebuilt = saved(root)
    assert rebuilt["index"].tolist() == list(range(8))  # each image exactly once
    assert torch.equal(rebuilt["reconstruction"], first["reconstruction"])  # the redone images: the same values
    assert (root / "chunks" / "damaged" / "chunk-000000002.csv").is_file()  # set aside, not deleted


def test_two_runs_on_one_folder_one_refuses_and_each_image_is_once(tmp_path, data_root):
    root = tmp_path / "shared"
    env = {**os.environ, "WANDB_SILENT": "true", "PYTHONWARNINGS": "ignore"}
    started = [subprocess.Popen([sys.executable, "-m", "dip_lightning.cli", *command(root, data_root, size)], cwd=REPO,
                                env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for size in (2, 4)]
    outcomes = [(p.wait(timeout=600), p.stderr.read()) for p in started]
    codes = sorted(code for code, _ in outcomes)
    refusal = [err for code, err in outcomes if code == 2]
    if codes == [0, 2]:  # the second one found the folder in use
        errors = [line for line in refusal[0].splitlines() if "error" in line]
        assert len(errors) == 1 and "in use by another dip-lightning run" in errors[0]
    else:  # the first had already finished when the second took the folder: it resumed everything
        assert codes == [0, 0]
    assert saved(root)["index"].tolist() == list(range(8))
    assert sorted(read_results(root)) == list(range(8))
    assert json.loads((root / "summary.json").read_text())["num_images"] == 8


def test_the_lock_is_held_for_the_run_and_released_with_it(tmp_path):
    held = RunFolder(tmp_path / "run")
    held.lock()
    holder = subprocess.run([sys.executable, "-c", "from dip_lightning.results import RunFolder; "
                             f"RunFolder({str(tmp_path / 'run')!r}).lock()"], capture_output=True, text=True, cwd=REPO)
    assert holder.returncode != 0 and "in use by another dip-lightning run" in holder.stderr
    assert f"pid {os.getpid()}" in holder.stderr
    held.lock()  # a process never blocks itself (a sweep's next run of the same folder)
    held.release()
    free = subprocess.run([sys.executable, "-c", "from dip_lightning.results import RunFolder; "
                           f"RunFolder({str(tmp_path / 'run')!r}).lock()"], capture_output=True, text=True, cwd=REPO)
    assert free.returncode == 0, free.stderr


def test_a_folder_that_cannot_be_written_is_one_line_and_exit_2(tmp_path, data_root):
    (tmp_path / "a_file").write_text("")
    done = cli(*command(tmp_path / "a_file" / "run", data_root))
    assert done.returncode == 2 and "Traceback" not in done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("dip-lightning: error")]
    assert len(errors) == 1 and "cannot write to" in errors[0] and "--trainer.default_root_dir" in errors[0]


def test_a_full_disk_during_a_chunk_is_one_line_and_keeps_what_was_written(tmp_path, data_root, monkeypatch):
    """torch.save reports a full disk as a RuntimeError of its zip writer; the run stops with one line naming the
    fix, and the chunks written before are kept, so the same command afterwards finishes the run."""
    from dip_lightning.cli import run_fit

    root = tmp_path / "run"
    real_save, calls = torch.save, []

    def failing_save(obj, handle, *args, **kwargs):
        calls.append(1)
        if len(calls) == 2:  # the second chunk's tensors
            raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 7360 vs 7312")
        return real_save(obj, handle, *args, **kwargs)

    overrides = command(root, data_root)[3:]  # the overrides after --config
    monkeypatch.setattr(torch, "save", failing_save)
    with pytest.raises(DipLightningError, match="is the disk full.*run the same command again"):
        run_fit(REPO / "configs" / "mnist_cs_netgd.yaml", root, overrides)
    monkeypatch.setattr(torch, "save", real_save)
    assert [p.name for p in sorted((root / "chunks").glob("chunk-*.csv"))] == ["chunk-000000000.csv"]
    assert not list((root / "chunks").glob(".*.tmp"))  # no half-written file left behind
    run_fit(REPO / "configs" / "mnist_cs_netgd.yaml", root, overrides)
    assert saved(root)["index"].tolist() == list(range(8))


def test_files_are_readable_by_others_and_wandb_resumes_its_run(tmp_path, data_root):
    root = tmp_path / "run"
    previous = os.umask(0o022)
    try:
        run(root, data_root, 2, "--trainer.logger", "lightning.pytorch.loggers.WandbLogger",
            "--trainer.logger.offline", "true", "--data.num_images", "4")
    finally:
        os.umask(previous)
    for name in ("results.csv", "summary.json", "chunks/run.json", "chunks/chunk-000000000.csv", "reconstructions.pt"):
        assert stat.S_IMODE((root / name).stat().st_mode) == 0o644, name
    first = (root / "chunks" / "wandb_id").read_text()
    time.sleep(1)
    run(root, data_root, 2, "--trainer.logger", "lightning.pytorch.loggers.WandbLogger",
        "--trainer.logger.offline", "true", "--data.num_images", "8")
    assert (root / "chunks" / "wandb_id").read_text() == first
    runs = sorted(p.name for p in (root / "wandb").glob("offline-run-*"))
    assert len(runs) == 2 and all(name.endswith(first) for name in runs)  # one W&B run id over both invocations


def test_an_unknown_option_is_one_line(tmp_path, data_root):
    done = cli(*command(tmp_path, data_root), "--model.bogus", "1")
    assert done.returncode == 2
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "'bogus' is not accepted" in lines[0] and "--help" in lines[0]
