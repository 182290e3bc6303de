"""scripts/reproduce_paper.py end to end on two real digits, and scripts/tune_baseline.py."""

import csv
import json
import os
import subprocess
import sys

import pytest
import yaml
from PIL import Image

from tests.helpers import REPO

pytestmark = pytest.mark.slow  # real script runs


def script(name: str, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "WANDB_SILENT": "true", "PYTHONWARNINGS": "ignore"}
    return subprocess.run([sys.executable, str(REPO / "scripts" / name), *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=600)


def test_sweep_writes_results_table_plot_and_wandb_run_and_resumes(tmp_path, data_root):
    out = tmp_path / "sweep"
    args = ["--dataset", "mnist", "--problem", "cs", "--num-images", "2", "--methods", "netgd", "tv",
            "--ratios", "0.1", "0.25", "--data-root", str(data_root), "--out", str(out),
            "--override", "netgd=--model.iterations 20 --model.restarts.count 1", "--override", "tv=--model.iterations 300"]
    done = script("reproduce_paper.py", *args)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "seed 2026" in done.stdout  # the random digits are reproducible and say how they were drawn
    with open(out / "results.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 2 * 2 * 2 and {r["method"] for r in rows} == {"netgd", "tv"}
    assert {r["ratio"] for r in rows} == {"0.1", "0.25"} and len({r["index"] for r in rows}) == 2
    tv = {float(r["ratio"]): float(r["nmse"]) for r in rows if r["method"] == "tv"}
    assert tv[0.25] < tv[0.1] + 1e-3  # more measurements do not hurt the converged baseline
    table = (out / "table.md").read_text()
    mean_tv = sum(float(r["nmse"]) for r in rows if r["method"] == "tv" and r["ratio"] == "0.25") / 2
    assert "| TV |" in table and f"{mean_tv:.4f}" in table and "TVAL3" in table  # ours and the paper's
    assert Image.open(out / "nmse_vs_f.png").size[0] > 500
    assert list((out / "wandb").glob("offline-run-*"))
    first = {(t["method"], t["ratio"]): t["seconds"] for t in json.loads((out / "timings.json").read_text())}
    assert len(first) == 4 and all(seconds > 0 for seconds in first.values())
    # the same command again resumes: nothing is recomputed and the results are unchanged
    again = script("reproduce_paper.py", *args, "--no-wandb")
    assert again.returncode == 0, again.stderr[-3000:]
    with open(out / "results.csv", newline="") as handle:
        assert list(csv.DictReader(handle)) == rows
    # and the time each run took counts the first invocation too (the resumed one is only a few seconds)
    for t in json.loads((out / "timings.json").read_text()):
        assert t["seconds"] >= first[(t["method"], t["ratio"])]


def test_tuning_records_the_best_value_per_ratio(tmp_path, data_root):
    tuned = tmp_path / "tuned.yaml"
    tuned.write_text(yaml.safe_dump({"other_config": {0.5: {"weight": 1.0}}}))
    done = script("tune_baseline.py", "--config", "configs/mnist_cs_lasso_dct.yaml", "--param", "weight",
                  "--values", "0.01", "1000", "--ratios", "0.25", "--indices", "[0, 1]", "--data-root", str(data_root),
                  "--out", str(tmp_path / "tune"), "--write", str(tuned), "--", "--data.train", "true",
                  "--model.iterations", "100")
    assert done.returncode == 0, done.stderr[-3000:]
    recorded = yaml.safe_load(tuned.read_text())
    assert recorded["mnist_cs_lasso_dct"] == {0.25: {"weight": 0.01}}  # a huge weight zeroes the image: worse
    assert recorded["other_config"] == {0.5: {"weight": 1.0}}  # other entries are kept
    assert "mnist-train" in done.stdout
