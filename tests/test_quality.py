"""Quality floors: each method, run through its config as ``dip-lightning fit`` runs it, reconstructs 4 fixed MNIST
test digits (not among the digits any setting was chosen on) at least this well. Every floor is checked to be one
that the best constant image (each image's mean) fails, so a method whose output degenerated would fail it."""

from pathlib import Path

import pytest
import torch

from dip_lightning.cli import run_fit
from dip_lightning.metrics import normalized_mse

pytestmark = pytest.mark.slow  # real fits of seconds to a minute each

DIGITS = "[2000, 4000, 6000, 8000]"
CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def fit(tmp_path: Path, data_root: Path, *configs: str, overrides: tuple[str, ...] = ()) -> dict:
    return run_fit([CONFIGS / config for config in configs], tmp_path, [
        "--data.root", str(data_root), "--data.indices", DIGITS, "--data.num_images", "4", "--data.chunk_size", "4",
        *overrides])


def constant_image_nmse(tmp_path: Path) -> float:
    """The mean nMSE of the best constant image of each reference (its mean pixel), from the run's grid inputs."""
    saved = torch.load(tmp_path / "chunks" / sorted(p.name for p in (tmp_path / "chunks").glob("*.pt"))[0])
    target = saved["target"]
    constant = target.mean(dim=(1, 2, 3), keepdim=True).expand_as(target)
    return float(normalized_mse(constant, target).mean())


@pytest.mark.parametrize(("configs", "overrides", "floor"), [
    # compressive sensing, f = 0.25, the configs as they are: Net-GD with its TV image step, plain Net-GD (the
    # throughput config, eager here), Net-PGD and the baselines
    (["mnist_cs_netgd.yaml"], (), 0.01),
    (["mnist_cs_netgd_fast.yaml"], ("--model.compile", "false"), 0.05),
    (["mnist_cs_netpgd.yaml"], (), 0.04),
    (["mnist_cs_tv.yaml"], (), 0.03),
    (["mnist_cs_lasso_wavelet.yaml"], (), 0.4),
    # phase retrieval, f = 0.5, with a shorter search (8 restarts, 1500 iterations, no rescue round)
    (["mnist_cpr_netgd.yaml"], ("--model.operator.ratio", "0.5", "--model.restarts.count", "8", "--model.iterations",
                                "1500", "--model.rescue_rounds", "0"), 0.05),
    (["mnist_cpr_netgd.yaml", "mnist_cpr_netpgd.yaml"], (
        "--model.operator.ratio", "0.5", "--model.restarts.count", "8", "--model.iterations", "1600",
        "--model.warm_start", "1500", "--model.rescue_rounds", "0"), 0.05),
    # phase retrieval without a prior needs m >> n: truncated amplitude flow at f = 3 recovers the digits
    (["mnist_cpr_taf.yaml"], ("--model.operator.ratio", "3.0"), 1e-3),
], ids=["net-gd-tv cs", "net-gd cs", "net-pgd cs", "tv cs", "lasso cs", "net-gd cpr", "net-pgd cpr", "taf cpr"])
def test_mean_nmse_on_four_test_digits_is_below_the_floor(configs, overrides, floor, tmp_path, data_root):
    run = fit(tmp_path, data_root, *configs, overrides=overrides)
    nmse = [float(row["nmse"]) for row in run["rows"]]
    assert len(nmse) == 4 and sum(nmse) / 4 <= floor, nmse
    assert constant_image_nmse(tmp_path) > 2 * floor  # the floor means something


def test_dip_denoising_is_well_above_the_noisy_image(tmp_path, data_root):
    """The Deep Image Prior on a noisy 64x64 crop of the camera photo (sigma 25/255): PSNR at least 5 dB above the
    noisy image's, which a constant image (about 12 dB) and the noisy image itself (about 20 dB) fail."""
    out = tmp_path / "dip"
    run = run_fit(CONFIGS / "denoise_dip.yaml", out, ["--data.images", "[camera]", "--data.channels", "1",
                                                      "--data.size", "64", "--model.iterations", "1000"])
    saved = torch.load(next((out / "chunks").glob("*.pt")))
    target, noisy = saved["target"], saved["measured"]
    noisy_psnr = float(-10 * torch.log10((noisy.clamp(0, 1) - target).pow(2).mean()))
    constant_psnr = float(-10 * torch.log10((target.mean() - target).pow(2).mean()))
    psnr = float(run["rows"][0]["psnr"])
    assert psnr >= noisy_psnr + 5 > constant_psnr + 5, (psnr, noisy_psnr)
