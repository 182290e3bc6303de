from pathlib import Path

import pytest

from tests.helpers import DATA_ROOT


@pytest.fixture(scope="session")
def data_root() -> Path:
    if not (DATA_ROOT / "MNIST" / "raw").is_dir():
        pytest.fail(f"test data not found at {DATA_ROOT}: set DIP_LIGHTNING_DATA to the shared data folder")
    return DATA_ROOT
