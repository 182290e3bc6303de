"""Multi-process runs, kill-and-resume, and divergence flagging."""

import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest
import torch

from dip_lightning.algorithms import NetGD
from dip_lightning.operators import CompressiveSensing
from tests.helpers import REPO, cli, cli_process, read_results

pytestmark = pytest.mark.slow  # real CLI runs / several processes

INDICES = "[4, 8, 15, 16, 23]"  # five images: an uneven split over 2 processes and over chunks of 2


def run_args(data_root, out, *extra):
    return ["fit", "--config", "configs/mnist_cs_netgd.yaml", "--data.root", str(data_root),
            "--data.indices", INDICES, "--data.chunk_size", "2", "--model.restarts.count", "1", "--model.compile", "false",
            "--trainer.logger", "false", "--trainer.enable_progress_bar", "false",
            "--trainer.accelerator", "cpu", "--trainer.default_root_dir", str(out), *extra]


def test_two_processes_give_each_image_once_and_the_same_results(tmp_path, data_root):
    single = cli(*run_args(data_root, tmp_path / "one", "--model.iterations", "40"))
    assert single.returncode == 0, single.stderr[-3000:]
    double = cli_process(*run_args(data_root, tmp_path / "two", "--model.iterations", "40",
                           "--trainer.devices", "2"))  # the strategy follows: ddp_independent
    assert double.returncode == 0, double.stderr[-3000:]
    one, two = read_results(tmp_path / "one"), read_results(tmp_path / "two")
    assert sorted(two) == sorted(one) == [4, 8, 15, 16, 23]
    with open(tmp_path / "two" / "results.csv") as handle:
        assert len(handle.read().strip().splitlines()) == 1 + 5  # header + each image once
    for index in one:
        for key in ("nmse", "psnr", "residual"):
            assert float(two[index][key]) == pytest.approx(float(one[index][key]), rel=1e-5, abs=1e-5)
    a = torch.load(tmp_path / "one" / "reconstructions.pt")
    b = torch.load(tmp_path / "two" / "reconstructions.pt")
    assert torch.equal(a["index"], b["index"])
    torch.testing.assert_close(b["reconstruction"], a["reconstruction"], rtol=0, atol=1e-5)
    assert json.loads((tmp_path / "two" / "summary.json").read_text())["num_processes"] == 2


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_two_nodes_through_torchrun_give_each_image_once_and_the_results_of_one_process(tmp_path, data_root):
    """Two "nodes" of one process each, started as a cluster starts them: ``torchrun --nnodes 2 --node-rank R`` with a
    rendezvous on localhost (gloo). The CLI picks ddp_independent for several nodes; every image is reconstructed
    once, by one of the nodes, and the results are those of one process."""
    single = cli(*run_args(data_root, tmp_path / "one", "--model.iterations", "40"))
    assert single.returncode == 0, single.stderr[-3000:]
    port = free_port()
    env = {**os.environ, "WANDB_SILENT": "true", "PYTHONWARNINGS": "ignore", "OMP_NUM_THREADS": "1"}
    nodes = [subprocess.Popen(
        [sys.executable, "-m", "torch.distributed.run", "--nnodes", "2", "--nproc-per-node", "1", "--node-rank",
         str(rank), "--master-addr", "127.0.0.1", "--master-port", str(port), "-m", "dip_lightning.cli",
         *run_args(data_root, tmp_path / "two", "--model.iterations", "40", "--trainer.num_nodes", "2")],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for rank in (0, 1)]
    outputs = [node.communicate(timeout=600)[0] for node in nodes]
    assert [node.returncode for node in nodes] == [0, 0], outputs[0][-3000:] + outputs[1][-3000:]
    one, two = read_results(tmp_path / "one"), read_results(tmp_path / "two")
    assert sorted(two) == sorted(one) == [4, 8, 15, 16, 23]
    summary = json.loads((tmp_path / "two" / "summary.json").read_text())
    assert summary["num_processes"] == 2 and summary["num_images"] == 5
    for index in one:
        assert float(two[index]["nmse"]) == float(one[index]["nmse"])  # bitwise: the same reconstructions
    assert torch.equal(torch.load(tmp_path / "two" / "reconstructions.pt")["reconstruction"],
                       torch.load(tmp_path / "one" / "reconstructions.pt")["reconstruction"])


def test_plain_ddp_is_refused_because_it_would_mix_gradients(tmp_path, data_root):
    done = cli_process(*run_args(data_root, tmp_path, "--model.iterations", "5", "--trainer.devices", "2",
                         "--trainer.strategy", "ddp"))
    assert done.returncode != 0
    assert "ddp_independent" in done.stderr and "Traceback" not in done.stderr
    assert sum("dip-lightning: error" in line for line in done.stderr.splitlines()) == 1  # said once, not per process


@pytest.fixture(scope="module")
def whole_run(tmp_path_factory, data_root):
    """The reference: the five images reconstructed by one uninterrupted run."""
    out = tmp_path_factory.mktemp("whole")
    reference = cli(*run_args(data_root, out, "--model.iterations", "600"))
    assert reference.returncode == 0, reference.stderr[-3000:]
    return read_results(out)


@pytest.mark.parametrize("stop", [signal.SIGKILL, signal.SIGTERM, signal.SIGUSR1], ids=["crash", "SIGTERM", "SIGUSR1"])
def test_killed_run_resumes_without_losing_or_repeating_images(stop, whole_run, tmp_path, data_root):
    """A crash (SIGKILL), or the SIGTERM / SIGUSR1 a SLURM scheduler sends before it preempts and requeues a job: the
    finished chunks stay, and the same command started again does the rest, each image once, as one run would."""
    args = run_args(data_root, tmp_path / "killed", "--model.iterations", "600")
    env = {**os.environ, "WANDB_SILENT": "true", "PYTHONWARNINGS": "ignore"}
    process = subprocess.Popen([sys.executable, "-m", "dip_lightning.cli", *args], cwd=REPO, env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    chunks = tmp_path / "killed" / "chunks"
    deadline = time.time() + 300
    # results.csv is rebuilt right after a chunk's own files: wait for it, then kill
    while not (tmp_path / "killed" / "results.csv").exists() and time.time() < deadline and process.poll() is None:
        time.sleep(0.02)
    process.send_signal(stop)
    assert process.wait(timeout=120) != 0  # it stopped
    finished_first = {p.name: p.stat().st_mtime_ns for p in chunks.glob("chunk-*.csv")}
    assert 0 < len(finished_first) < 3, "the kill should land after the first of three chunks"
    assert 0 < len(read_results(tmp_path / "killed")) < 5  # results.csv already holds them

    resumed = cli(*args)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    for name, mtime in finished_first.items():  # kept, not recomputed
        assert (chunks / name).stat().st_mtime_ns == mtime
    whole, killed = whole_run, read_results(tmp_path / "killed")
    assert sorted(killed) == sorted(whole) == [4, 8, 15, 16, 23]
    for index in whole:
        assert float(killed[index]["nmse"]) == pytest.approx(float(whole[index]["nmse"]), rel=1e-5)


def test_resuming_with_another_configuration_is_refused(tmp_path, data_root):
    first = cli(*run_args(data_root, tmp_path, "--model.iterations", "5"))
    assert first.returncode == 0, first.stderr[-3000:]
    second = cli(*run_args(data_root, tmp_path, "--model.iterations", "5", "--model.operator.ratio", "0.1"))
    assert second.returncode != 0 and "ratio" in second.stderr and "Traceback" not in second.stderr


def test_diverged_image_is_flagged_and_spares_its_chunk_mates():
    model = NetGD(CompressiveSensing((1, 28, 28), ratio=0.3), chunk_size=3, iterations=2)
    target = torch.rand(3, 1, 28, 28)

    def blow_up(chunk, loss) -> None:
        if chunk.iteration == 1:
            with torch.no_grad():
                model.prior.weights[0][1].fill_(float("nan"))  # decoder of image 1 blows up

    result = model.reconstruct({"index": torch.tensor([0, 1, 2]), "image": target}, on_step=blow_up)
    assert result.status == ["ok", "diverged", "ok"]
    assert torch.isfinite(result.metrics["nmse"][[0, 2]]).all()
    assert torch.isfinite(result.reconstruction[[0, 2]]).all()
