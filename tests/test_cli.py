"""End-to-end runs of the `dip-lightning` command on real MNIST digits and CelebA faces."""

import json

import numpy as np
import pytest

from tests.helpers import cli, read_results

pytestmark = pytest.mark.slow  # real CLI runs / several processes

# eager steps: compilation (the configs' default) is tested by the fast config's run below and tests/test_compile.py
QUICK = ["--trainer.enable_progress_bar", "false", "--model.iterations", "30", "--model.restarts.count", "1",
         "--model.compile", "false"]


def test_fit_writes_results_summary_grid_and_offline_wandb_run(tmp_path, data_root):
    out = tmp_path / "run"
    done = cli("fit", "--config", "configs/mnist_cs_netgd.yaml", "--data.root", str(data_root),
               "--data.indices", "[3, 1, 4]", "--model.operator.ratio", "0.3", *QUICK,
               "--trainer.default_root_dir", str(out))
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"Results written to {out}" in done.stdout
    rows = read_results(out)
    assert sorted(rows) == [1, 3, 4]
    assert set(rows[1]) >= {"index", "nmse", "psnr", "ssim", "residual", "seconds", "status"}
    assert all(row["status"] == "ok" and 0 < float(row["nmse"]) < 1 for row in rows.values())
    summary = json.loads((out / "summary.json").read_text())
    assert summary["num_images"] == 3 and summary["algorithm"] == "net-gd-tv"
    assert summary["ratio"] == 0.3 and summary["dataset"] == "mnist-test"
    assert summary["nmse_mean"] == pytest.approx(np.mean([float(r["nmse"]) for r in rows.values()]))
    assert {"nmse_median", "psnr_mean", "ssim_mean", "wall_seconds"} <= set(summary)
    assert (out / "reconstructions.png").stat().st_size > 1000
    runs = list((out / "wandb").glob("offline-run-*"))
    assert len(runs) == 1 and list(runs[0].glob("*.wandb"))
    # the offline run's files: a W&B table with one row per image, each with its reference and reconstruction as
    # images, and the results files as an artifact (staged beside the run, for `wandb sync`)
    staged = {p: p.read_bytes() for p in (out / "wandb" / "artifacts" / "staging").iterdir()}
    tables = [json.loads(b) for b in staged.values() if b.startswith(b'{"_type": "table"')]
    images = next(t for t in tables if "reconstruction" in t["columns"])
    assert sorted(row[0] for row in images["data"]) == [1, 3, 4]
    for row in images["data"]:
        record = dict(zip(images["columns"], row))
        assert record["target"]["_type"] == record["reconstruction"]["_type"] == "image-file"
        assert isinstance(record["nmse"], float) and record["status"] == "ok"  # typed numbers, not strings
    assert sum(b.startswith(b"\x89PNG") for b in staged.values()) >= 6  # 3 references, 3 reconstructions
    assert any(b.startswith(b"index,name,nmse") for b in staged.values())  # results.csv in the artifact


def test_netpgd_with_csv_logger_and_two_chunks(tmp_path, data_root):
    out = tmp_path / "pgd"
    done = cli("fit", "--config", "configs/mnist_cs_netpgd.yaml", "--data.root", str(data_root),
               "--data.num_images", "3", "--data.chunk_size", "2", *QUICK, "--model.inner_steps", "2",
               "--trainer.logger", "lightning.pytorch.loggers.CSVLogger",
               "--trainer.logger.save_dir", str(out), "--trainer.default_root_dir", str(out))
    assert done.returncode == 0, done.stderr[-3000:]
    assert sorted(read_results(out)) == [0, 1, 2]
    metrics = next(out.glob("**/metrics.csv")).read_text()
    assert "chunk/nmse" in metrics


@pytest.mark.parametrize("subcommand", ["test", "validate"])
def test_test_and_validate_subcommands_reconstruct_too(subcommand, tmp_path, data_root):
    out = tmp_path / subcommand
    done = cli(subcommand, "--config", "configs/mnist_cs_netgd.yaml", "--data.root", str(data_root),
               "--data.num_images", "2", *QUICK, "--trainer.logger", "false",
               "--trainer.default_root_dir", str(out))
    assert done.returncode == 0, done.stderr[-3000:]
    assert sorted(read_results(out)) == [0, 1]


def test_celeba_config_runs_on_the_plain_face_folder(tmp_path, data_root):
    out = tmp_path / "celeba"
    done = cli("fit", "--config", "configs/celeba_cs_netgd.yaml", "--data.root", str(data_root),
               "--data.num_images", "2", *QUICK, "--trainer.logger", "false",
               "--trainer.default_root_dir", str(out))
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads((out / "summary.json").read_text())["dataset"] == "celeba-test"


def test_print_config_shows_linked_keys(data_root):
    done = cli("fit", "--config", "configs/mnist_cs_netpgd.yaml", "--print_config")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "NetPGD" in done.stdout and "ratio:" in done.stdout and "inner_steps:" in done.stdout


@pytest.mark.parametrize(
    ("override", "message"),
    [
        (["--model.operator.ratio", "1.5"], "ratio 1.5 is outside (0, 1]"),
        (["--model.operator.ratio", "0"], "ratio 0.0 is outside"),
        (["--data.indices", "[0, 99999]"], "index 99999 is out of range"),
        (["--data.indices", "[]"], "indices is empty"),
        (["--data.root", "/nonexistent/place"], "/nonexistent/place/MNIST/raw"),
        (["--model.prior.channels", "[25, 0, 10]"], "positive integers"),
        (["--model.no_such_key", "1"], "no_such_key"),
    ],
)
def test_bad_input_fails_fast_with_a_message_and_no_traceback(override, message, data_root, tmp_path):
    args = ["fit", "--config", "configs/mnist_cs_netgd.yaml", "--data.root", str(data_root),
            "--data.num_images", "2", "--trainer.logger", "false", "--trainer.default_root_dir", str(tmp_path)]
    done = cli(*args, *override)
    assert done.returncode != 0
    assert message in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "results.csv").exists()


def test_nan_in_user_images_is_reported_before_reconstruction(tmp_path):
    folder = tmp_path / "images"
    folder.mkdir()
    image = np.full((28, 28), 0.5)
    image[0, 0] = np.inf
    np.save(folder / "x.npy", image)
    done = cli("fit", "--config", "configs/mnist_cs_netgd.yaml", "--data", "dip_lightning.data.ImageFolderDataModule",
               "--data.root", str(folder), "--data.image_size", "28", "--data.channels", "1",
               "--trainer.logger", "false", "--trainer.default_root_dir", str(tmp_path / "out"))
    assert done.returncode != 0 and "NaN or Inf" in done.stderr and "Traceback" not in done.stderr


def test_debug_flag_shows_the_traceback(data_root, tmp_path):
    done = cli("fit", "--config", "configs/mnist_cs_netgd.yaml", "--model.operator.ratio", "2", "--debug",
               "--trainer.logger", "false", "--trainer.default_root_dir", str(tmp_path))
    assert done.returncode != 0 and "Traceback" in done.stderr


@pytest.mark.parametrize(("configs", "warm_start"), [
    (["configs/mnist_cpr_netgd.yaml"], []),
    (["configs/mnist_cpr_netgd.yaml", "--config", "configs/mnist_cpr_netpgd.yaml"], ["--model.warm_start", "20"])])
def test_phase_retrieval_runs_with_ratio_above_one_and_spectral_start(configs, warm_start, tmp_path, data_root):
    out = tmp_path / "cpr"
    done = cli("fit", "--config", *configs, "--data.root", str(data_root), "--data.num_images", "2",
               *QUICK, *warm_start, "--model.operator.ratio", "2.0", "--model.spectral_start", "20",
               "--trainer.logger", "false", "--trainer.default_root_dir", str(out))
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["problem"] == "cpr" and summary["num_measurements"] == 2 * 784
    assert summary["spectral_start"] == 20 and summary["num_images"] == 2
    assert summary["suspect_residual"] == 0.2  # the config's table by f = m / n, beyond its last ratio (1.0)
    assert summary["retry"]["residual"] == 0.23  # likewise


def test_spectral_initialization_is_refused_for_compressive_sensing(tmp_path, data_root):
    done = cli("fit", "--config", "configs/mnist_cs_netgd.yaml", "--data.root", str(data_root),
               "--model.spectral_start", "300", "--trainer.logger", "false",
               "--trainer.default_root_dir", str(tmp_path))
    assert done.returncode == 2 and "phase retrieval" in done.stderr and "Traceback" not in done.stderr


@pytest.mark.parametrize("config", ["mnist_cs_lasso_dct", "mnist_cs_lasso_wavelet", "mnist_cs_tv", "mnist_cpr_sparta",
                                    "mnist_cpr_taf"])
def test_baseline_configs_run_from_the_cli_and_write_the_same_results(config, tmp_path, data_root):
    out = tmp_path / config
    done = cli("fit", "--config", f"configs/{config}.yaml", "--data.root", str(data_root), "--data.num_images", "2",
               "--model.iterations", "40", "--trainer.enable_progress_bar", "false", "--trainer.logger", "false",
               "--trainer.default_root_dir", str(out))
    assert done.returncode == 0, done.stderr[-3000:]
    rows = read_results(out)
    assert sorted(rows) == [0, 1] and all(0 <= float(r["nmse"]) < 2 for r in rows.values())
    summary = json.loads((out / "summary.json").read_text())
    assert summary["algorithm"].split("-")[0] in config and summary["iterations"] == 40
    assert (out / "reconstructions.png").is_file()


RESTORATION = ["denoise_dip", "denoise_dd", "denoise_tv", "denoise_wavelet", "denoise_nlmeans", "inpaint_dip",
               "inpaint_dd", "inpaint_biharmonic", "superres_dip", "superres_dd", "superres_bicubic"]


@pytest.mark.parametrize("config", RESTORATION)
def test_restoration_configs_run_on_bundled_natural_images(config, tmp_path):
    """Every denoising / inpainting / super-resolution config end to end, on two small crops of real photos."""
    out = tmp_path / config
    budget = [] if config.split("_")[1] in {"tv", "wavelet", "nlmeans", "biharmonic", "bicubic"} else \
        ["--model.iterations", "3"]
    done = cli("fit", "--config", f"configs/{config}.yaml", "--data.images", "[camera, astronaut]",
               "--data.num_images", "2", "--data.chunk_size", "2", "--data.size", "64", *budget,
               "--trainer.logger", "false", "--trainer.enable_progress_bar", "false",
               "--trainer.default_root_dir", str(out))
    assert done.returncode == 0, done.stderr[-3000:]
    rows = read_results(out)
    assert sorted(rows) == [0, 1] and all(row["status"] == "ok" for row in rows.values())
    summary = json.loads((out / "summary.json").read_text())
    assert summary["problem"] == config.split("_")[0] and summary["dataset"].startswith("skimage-rgb64")
    if config.split("_")[1] in {"tv", "wavelet", "nlmeans", "biharmonic", "bicubic"}:
        assert summary["psnr_mean"] > 15  # a classical method's result is a real image, not noise


def test_grayscale_natural_images_and_a_mask_file(tmp_path):
    from PIL import Image

    mask = np.zeros((32, 32), dtype=np.uint8)
    mask[::2] = 255  # every other row observed
    Image.fromarray(mask).save(tmp_path / "rows.png")
    out = tmp_path / "run"
    done = cli("fit", "--config", "configs/inpaint_biharmonic.yaml", "--data.images", "[camera]", "--data.channels",
               "1", "--data.size", "32", "--model.operator.mask", str(tmp_path / "rows.png"),
               "--trainer.logger", "false", "--trainer.enable_progress_bar", "false",
               "--trainer.default_root_dir", str(out))
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["kept"] == 0.5 and summary["num_measurements"] == 512 and summary["dataset"].startswith("skimage-gray")
    assert Image.open(out / "reconstructions.png").size == (36, 3 * 34 + 2)  # target, masked image, reconstruction


@pytest.mark.parametrize(
    ("override", "message"),
    [
        (["--data.images", "[lena]"], "choose from the bundled images"),
        (["--data.size", "1024"], "smaller than the 1024x1024 crop"),
        (["--model.operator.noise_sigma", "0"], "denoising needs noise"),
        (["--data.size", "24"], "down to 1x1 pixels"),
        (["--model.data_consistency", "true"], "noiseless measurements"),
    ],
)
def test_bad_restoration_input_fails_fast(override, message, tmp_path):
    done = cli("fit", "--config", "configs/denoise_dip.yaml", "--trainer.logger", "false",
               "--trainer.default_root_dir", str(tmp_path), *override)
    assert done.returncode != 0 and message in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "results.csv").exists()


def test_fast_config_compiles_its_steps_and_writes_results(tmp_path, data_root):
    out = tmp_path / "fast"
    done = cli("fit", "--config", "configs/mnist_cs_netgd_fast.yaml", "--data.root", str(data_root),
               "--data.indices", "[3, 1, 4, 15, 9]", "--data.chunk_size", "3", "--model.iterations", "40",
               "--trainer.logger", "false", "--trainer.enable_progress_bar", "false",
               "--trainer.default_root_dir", str(out))
    assert done.returncode == 0, done.stderr[-3000:]
    rows = read_results(out)
    assert sorted(rows) == [1, 3, 4, 9, 15]  # two chunks (3 and 2 digits): two compiled shapes
    assert all(row["status"] == "ok" and 0 < float(row["nmse"]) < 1 for row in rows.values())
    summary = json.loads((out / "summary.json").read_text())
    assert summary["compile"] is True and summary["restarts"]["count"] == 1
