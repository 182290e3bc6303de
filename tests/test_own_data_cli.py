"""The README's "Your own data" commands, end to end through the `dip-lightning` command, on files the tests
write: a noisy photo, a scratched photo and its mask, a low-resolution image, a matrix and its measurements."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import png
import pytest
import torch
from PIL import Image

from dip_lightning.cli import main
from dip_lightning.files import read_image, write_png
from tests.helpers import cli, read_results

QUICK = ["--trainer.logger", "false", "--trainer.enable_progress_bar", "false"]
SHORT = ["--model.iterations", "3"]  # the iterative methods' budget (the classical ones are one step)
SMALL_SKIP = ["--model.prior.channels", "[8, 8, 8]", "--model.prior.skip_channels", "[2, 2, 2]",
              "--model.prior.input_channels", "4"]


def photo(height: int, width: int, seed: int = 0) -> torch.Tensor:
    """A smooth colour test image (gradients and a disc), values in [0, 1]."""
    y, x = torch.meshgrid(torch.linspace(0, 1, height), torch.linspace(0, 1, width), indexing="ij")
    disc = ((y - 0.5) ** 2 + (x - 0.4) ** 2 < 0.08).float()
    return torch.stack([0.2 + 0.6 * x, 0.3 + 0.5 * y * disc, 0.8 - 0.6 * x * y]).clamp(0, 1)


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    clean = photo(40, 52)
    for folder in ("clean", "noisy", "scratched", "low"):
        (tmp_path / folder).mkdir()
    write_png(tmp_path / "clean" / "garden.png", clean)
    noise = 0.1 * torch.randn(clean.shape, generator=torch.Generator().manual_seed(0))
    write_png(tmp_path / "noisy" / "garden.png", (clean + noise).clamp(0, 1))
    mask = np.full((40, 52), 255, dtype=np.uint8)
    mask[10:13, 5:45] = 0
    mask[:, 30:32] = 0
    Image.fromarray(mask).save(tmp_path / "mask.png")
    write_png(tmp_path / "scratched" / "garden.png", clean * torch.from_numpy(mask > 0))
    write_png(tmp_path / "low" / "garden.png", torch.nn.functional.avg_pool2d(clean[None], 4)[0])  # 10x13
    digits = np.random.default_rng(0).random((3, 1, 8, 8))
    matrix = np.random.default_rng(1).normal(0, 1 / 4, (16, 64))
    np.save(tmp_path / "A.npy", matrix)
    np.save(tmp_path / "y.npy", digits.reshape(3, -1) @ matrix.T)
    np.save(tmp_path / "y_magnitudes.npy", np.abs(digits.reshape(3, -1) @ matrix.T))
    np.save(tmp_path / "digits.npy", digits)
    return {"dir": tmp_path}


def run(*args: str, out: Path):
    classical = any(config in args for config in ("configs/denoise_tv.yaml", "configs/superres_bicubic.yaml",
                                                  "configs/inpaint_biharmonic.yaml", "configs/denoise_nlmeans.yaml"))
    done = cli("fit", *args, *QUICK, *([] if classical else SHORT), "--trainer.default_root_dir", str(out))
    assert done.returncode == 0, done.stderr[-3000:]
    return read_results(out), json.loads((out / "summary.json").read_text())


@pytest.mark.slow  # a real CLI run
def test_denoise_own_noisy_photo_at_its_own_size(files):
    d = files["dir"]
    rows, summary = run("--config", "configs/denoise_dip.yaml", "--data", "ObservedImages", "--data.root",
                        str(d / "noisy"), *SMALL_SKIP, out=d / "out")
    assert rows[0]["name"] == "garden" and rows[0]["nmse"] == "nan" and summary["num_with_reference"] == 0
    assert Image.open(d / "out" / "reconstructions" / "garden.png").size == (52, 40)
    assert summary["dataset"] == "observed:noisy"


@pytest.mark.slow  # a real CLI run
def test_denoise_baseline_with_references_and_16_bit_output(files):
    d = files["dir"]
    rows, summary = run("--config", "configs/denoise_tv.yaml", "--data", "ObservedImages", "--data.root",
                        str(d / "noisy"), "--data.references", str(d / "clean"), "--model.operator",
                        '{"class_path": "Denoising", "init_args": {"noise_sigma": null}}',  # estimated from the image
                        "--trainer.callbacks+=dip_lightning.callbacks.ResultsWriter",
                        "--trainer.callbacks.png_bits=16", out=d / "out")
    clean = read_image(d / "clean" / "garden.png", 3)
    noisy = read_image(d / "noisy" / "garden.png", 3)
    noisy_psnr = -10 * torch.log10((noisy - clean).pow(2).mean())
    assert float(rows[0]["psnr"]) > noisy_psnr + 3  # TV removes noise; measured against the reference
    assert png.Reader(filename=str(d / "out" / "reconstructions" / "garden.png")).read()[3]["bitdepth"] == 16


@pytest.mark.slow  # a real CLI run
def test_inpaint_own_photo_with_a_mask_file(files):
    d = files["dir"]
    rows, summary = run("--config", "configs/inpaint_dip.yaml", "--data", "ObservedImages", "--data.root",
                        str(d / "scratched"), "--model.operator.mask", str(d / "mask.png"), *SMALL_SKIP, out=d / "out")
    out = read_image(d / "out" / "reconstructions" / "garden.png", 3)
    given = read_image(d / "scratched" / "garden.png", 3)
    observed = torch.from_numpy(np.asarray(Image.open(d / "mask.png")) > 0).expand(3, -1, -1)
    assert out.shape == (3, 40, 52) and (out - given)[observed].abs().max() <= 1 / 255 + 1e-6


@pytest.mark.slow  # a real CLI run
def test_superresolve_own_low_resolution_image(files):
    d = files["dir"]
    rows, summary = run("--config", "configs/superres_bicubic.yaml", "--data", "ObservedImages", "--data.root",
                        str(d / "low"), "--data.scale", "4", "--data.references", str(d / "clean"),
                        "--model.operator.kernel", "box", out=d / "out")
    assert Image.open(d / "out" / "reconstructions" / "garden.png").size == (52, 40)
    assert float(rows[0]["psnr"]) > 20


@pytest.mark.slow  # a real CLI run
@pytest.mark.parametrize(("config", "measurements"), [("mnist_cs_netgd", "y.npy"), ("mnist_cpr_netgd", "y_magnitudes.npy")])
def test_compressive_measurements_with_their_matrix(files, config, measurements):
    d = files["dir"]
    rows, summary = run("--config", f"configs/{config}.yaml", "--model.operator.matrix", str(d / "A.npy"),
                        "--data", "MeasuredVectors", "--data.root", str(d / measurements), "--data.image_shape",
                        "[1, 8, 8]", "--data.references", str(d / "digits.npy"), "--model.prior.channels", "[8, 8]",
                        out=d / "out")
    assert sorted(rows) == [0, 1, 2] and summary["num_measurements"] == 16 and summary["matrix"].endswith("A.npy")
    assert all(np.isfinite(float(row["nmse"])) and float(row["residual"]) < 2 for row in rows.values())
    assert sorted(p.name for p in (d / "out" / "reconstructions").iterdir()) == ["000000.png", "000001.png",
                                                                                 "000002.png"]


def bad_inputs(d: Path) -> dict[str, tuple[list[str], str]]:
    (d / "broken").mkdir()
    (d / "broken" / "photo.png").write_text("not a png")
    y = np.load(d / "y.npy")
    np.save(d / "y_short.npy", y[:, :-1])
    y[1, 3] = np.inf
    np.save(d / "y_inf.npy", y)
    Image.fromarray(np.full((20, 20), 255, dtype=np.uint8)).save(d / "small_mask.png")
    vectors = ["--config", "configs/mnist_cs_netgd.yaml", "--model.operator.matrix", str(d / "A.npy"), "--data",
               "MeasuredVectors", "--data.image_shape", "[1, 8, 8]", "--data.root"]
    photos = ["--config", "configs/denoise_dip.yaml", "--data", "ObservedImages", "--data.root"]
    return {
        "missing folder": ([*photos, str(d / "nowhere")], "no images found at"),
        "unreadable image": ([*photos, str(d / "broken")], "photo.png is not a readable image"),
        "image too small for the prior": ([*photos, str(d / "low")], "down to 1x1 pixels"),
        "mask of the wrong size": (["--config", "configs/inpaint_dip.yaml", "--data", "ObservedImages", "--data.root",
                                    str(d / "scratched"), "--model.operator.mask", str(d / "small_mask.png")],
                                   "mask " + str(d / "small_mask.png") + " is 20x20 pixels but the images are 40x52"),
        "low-resolution image without --data.scale": (["--config", "configs/superres_bicubic.yaml", "--data",
                                                       "ObservedImages", "--data.root", str(d / "noisy")],
                                                      "pass --data.scale 4"),
        "a folder of masks": (["--config", "configs/inpaint_dip.yaml", "--data", "ObservedImages", "--data.root",
                               str(d / "scratched"), "--model.operator.mask", str(d / "clean")],
                              "is a folder; the mask is one image shared by every image"),
        "vector of the wrong length": ([*vectors, str(d / "y_short.npy")], "have shape 15 per image"),
        "Inf in the measurements": ([*vectors, str(d / "y_inf.npy")], "row 1 of"),
        "missing matrix": ([*vectors[:3], str(d / "none.npy"), *vectors[4:], str(d / "y.npy")],
                           "measurement matrix " + str(d / "none.npy") + " not found"),
    }


# not slow: every case fails before any reconstruction, in this process
@pytest.mark.parametrize("case", ["missing folder", "unreadable image", "image too small for the prior",
                                  "mask of the wrong size", "a folder of masks",
                                  "low-resolution image without --data.scale",
                                  "vector of the wrong length", "Inf in the measurements", "missing matrix"])
def test_bad_own_data_fails_early_with_one_line(files, case, capsys):
    d = files["dir"]
    args, message = bad_inputs(d)[case]
    out = d / "out"
    with pytest.raises(SystemExit) as stopped:  # in this process: the CLI's own exit, not a raised error
        main(["fit", *args, "--trainer.logger", "false", "--trainer.default_root_dir", str(out)])
    stderr = capsys.readouterr().err
    assert stopped.value.code == 2, stderr[-3000:]
    assert message in stderr and stderr.strip().count("\n") == 0 and stderr.startswith("dip-lightning: error:")
    assert not out.exists() or not any(out.iterdir())  # failed before anything was written (no W&B run, no results)
