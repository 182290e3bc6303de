"""Rewrite the README's "Results at a glance" block from the result files under docs/results/.

Usage::

    python scripts/results_table.py            # rewrite the block between the markers in README.md
    python scripts/results_table.py --check    # exit 1 if README.md's block is not what this would write

Each row of the table is one entry of ``docs/results/glance.yaml``: a results file (a CSV with a ``method`` column, as
``scripts/reproduce_paper.py`` and ``scripts/restoration_table.py`` write, or a JSON list of
``scripts/bench/benchmark.py --end-to-end`` records, whose method is the config's name), the rows to keep, and the
metric averaged per method. The best value of a row is in bold.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import re
import statistics
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "docs" / "results"
START, END = "<!-- results-at-a-glance: start (python scripts/results_table.py) -->", "<!-- results-at-a-glance: end -->"
HIGHER_IS_BETTER = {"psnr": True, "nmse": False}
UNITS = {"nmse": "mean nMSE", "psnr": "PSNR (dB)"}


def rows_of(path: Path) -> list[dict[str, str | float]]:
    if path.suffix == ".json":  # scripts/bench/benchmark.py --end-to-end records
        return [json_row(record) for record in json.loads(path.read_text()) if "error" not in record]
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def json_row(record: dict) -> dict[str, str | float]:
    """A benchmark record as a row: method = the config's name (``name@LABEL`` for a row run from another checkout,
    ``@DIR``, LABEL the first word of its label, e.g. a commit), the ratio where the row sets one."""
    arguments = record["arguments"]
    method = Path(re.search(r"--config (\S+)", arguments).group(1)).stem
    if arguments.startswith("@"):
        method += "@" + record["label"].split()[0]
    ratio = re.search(r"--model\.operator\.ratio (\S+)", arguments)
    return {"method": method, "ratio": float(ratio.group(1)) if ratio else math.nan,
            "psnr": record.get("psnr_mean", math.nan), "nmse": record.get("nmse_mean", math.nan)}


def matches(row: dict, where: dict) -> bool:
    for column, wanted in where.items():
        value = row[column]
        if isinstance(wanted, (int, float)):
            if not math.isclose(float(value), float(wanted)):
                return False
        elif str(value) != str(wanted):
            return False
    return True


def value(rows: list[dict], method: str, metric: str) -> float | None:
    values = [float(row[metric]) for row in rows if row["method"] == method]
    return statistics.fmean(values) if values else None


def formatted(number: float, metric: str) -> str:
    if metric == "psnr":
        return f"{number:.2f}"
    return f"{number:.1e}" if number < 1e-3 else f"{number:.4f}"


def table() -> str:
    entries = yaml.safe_load((RESULTS / "glance.yaml").read_text())
    lines = ["| problem | data | metric | untrained priors | baselines | source |", "|---|---|---|---|---|---|"]
    for entry in entries:
        rows = [row for row in rows_of(RESULTS / entry["file"]) if matches(row, entry.get("where") or {})]
        cells = {group: {label: value(rows, method, entry["metric"]) for label, method in entry[group].items()}
                 for group in ("priors", "baselines")}
        found = [v for group in cells.values() for v in group.values() if v is not None]
        if not found:
            raise SystemExit(f"no rows for {entry['problem']} ({entry['data']}) in {entry['file']}")
        best = (max if HIGHER_IS_BETTER[entry["metric"]] else min)(found)
        shown = {group: ", ".join(
            f"{label} **{formatted(number, entry['metric'])}**" if number == best
            else f"{label} {formatted(number, entry['metric'])}"
            for label, number in numbers.items() if number is not None) for group, numbers in cells.items()}
        source = f"[{entry['file']}](docs/results/{entry['file']})"
        lines.append(f"| {entry['problem']} | {entry['data']} | {UNITS[entry['metric']]} | {shown['priors']} | "
                     f"{shown['baselines']} | {source} |")
    return "\n".join(lines)


def block() -> str:
    return f"{START}\n{table()}\n{END}"


def readme_block(text: str) -> str:
    start, end = text.index(START), text.index(END) + len(END)
    return text[start:end]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="only compare: exit 1 if README.md's block differs")
    parser.add_argument("--readme", default=str(REPO / "README.md"))
    args = parser.parse_args()
    readme = Path(args.readme)
    text = readme.read_text()
    if START not in text or END not in text:
        raise SystemExit(f"{readme} has no results block: put the two markers {START!r} and {END!r} where it goes")
    if args.check:
        if readme_block(text) != block():
            sys.exit(f"{readme}'s results block is stale: run python scripts/results_table.py")
        return
    readme.write_text(text.replace(readme_block(text), block()))
    print(block())


if __name__ == "__main__":
    main()
