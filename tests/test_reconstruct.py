"""One way to run a chunk: the Trainer-free entry point that scripts, notebooks and ``validate``/``test`` use is
the same reconstruction as ``dip-lightning fit``."""

import pytest
import torch

from dip_lightning.cli import instantiate, run_fit
from dip_lightning.errors import DipLightningError


def test_reconstruct_on_the_datamodules_chunks_is_fit_bitwise(tmp_path, data_root):
    overrides = ["--data.root", str(data_root), "--data.indices", "[5, 2, 9]", "--data.chunk_size", "2",
                 "--model.iterations", "25", "--model.restarts.count", "2"]
    run_fit("configs/mnist_cs_netgd.yaml", tmp_path, overrides)
    fitted = torch.load(tmp_path / "reconstructions.pt")
    model, datamodule = instantiate("configs/mnist_cs_netgd.yaml", overrides)
    steps: list[int] = []
    results = [model.reconstruct(batch, on_step=lambda chunk, loss: steps.append(chunk.iteration))
               for batch in datamodule.test_dataloader()]
    assert [r.index.tolist() for r in results] == [[5, 2], [9]]  # the chunks fit runs
    assert steps == [*range(1, 26)] * 2  # on_step after every outer iteration of each chunk
    index = torch.cat([r.index for r in results])
    reconstruction = torch.cat([r.reconstruction for r in results])
    order = [index.tolist().index(i) for i in fitted["index"].tolist()]
    assert torch.equal(reconstruction[order], fitted["reconstruction"])


def test_instantiate_raises_the_users_error_itself(data_root):
    with pytest.raises(DipLightningError, match="out of range"):
        instantiate("configs/mnist_cs_netgd.yaml", ["--data.root", str(data_root), "--data.indices", "[10000]"])
