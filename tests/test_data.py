import shutil

import numpy as np
import pytest
import torch

from dip_lightning.data import CelebADataModule, ImageFolderDataModule, MNISTDataModule
from dip_lightning.data.base import ImageChunks
from dip_lightning.errors import DipLightningError


def test_mnist_selection_by_indices_and_num_images(data_root):
    dm = MNISTDataModule(root=str(data_root), indices=[5, 3, 9], num_images=2)
    with pytest.warns(UserWarning, match="keeps only the first 2 of the 3 images"):
        dm.setup()
    assert dm.selection == [5, 3]
    assert dm.images[5].shape == (1, 28, 28)
    assert 0 <= dm.images[5].min() and dm.images[5].max() <= 1
    default = MNISTDataModule(root=str(data_root), num_images=4)
    default.setup()
    assert default.selection == [0, 1, 2, 3] and len(default.images) == 10_000  # test split


def test_mnist_root_from_environment(data_root, monkeypatch):
    monkeypatch.setenv("DIP_LIGHTNING_DATA", str(data_root))
    dm = MNISTDataModule(num_images=1)
    dm.setup()
    assert dm.root == str(data_root)


def test_out_of_range_index_names_the_valid_range(data_root):
    dm = MNISTDataModule(root=str(data_root), indices=[0, 10_000])
    with pytest.raises(DipLightningError, match=r"index 10000 is out of range.*0\.\.9999"):
        dm.setup()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"indices": []}, "empty"), ({"indices": [1, 1]}, "repeats"), ({"num_images": 0}, "no image"),
     ({"chunk_size": 0}, "chunk_size"), ({"random": 0}, "--data.random")],
)
def test_bad_selection_is_rejected_early(kwargs, message):
    with pytest.raises(DipLightningError, match=message):
        MNISTDataModule(root="nowhere", **kwargs)


def test_missing_mnist_names_where_it_looked(tmp_path):
    dm = MNISTDataModule(root=str(tmp_path / "absent"))
    with pytest.raises(DipLightningError, match=r"absent/MNIST/raw.*--data.root"):
        dm.setup()


def test_chunks_cover_each_image_once():
    images = [torch.full((1, 2, 2), float(i)) for i in range(10)]
    chunks = ImageChunks(images, [7, 1, 4, 9, 2], num_chunks=3, image_shape=(1, 2, 2))
    served = [chunks[k]["index"].tolist() for k in range(len(chunks))]
    assert sorted(sum(served, [])) == [1, 2, 4, 7, 9] and [len(c) for c in served] in ([2, 1, 2], [1, 2, 2], [2, 2, 1])
    assert torch.equal(chunks[0]["image"][:, 0, 0, 0], torch.tensor([float(i) for i in served[0]]))
    empty = ImageChunks(images, [3], num_chunks=2, image_shape=(1, 2, 2))
    assert [empty[k]["image"].shape[0] for k in range(2)] in ([0, 1], [1, 0])


def test_random_selection_is_numpys_draw_sorted_and_applies_to_the_given_indices(data_root):
    import numpy as np

    drawn = MNISTDataModule(root=str(data_root), random=16, seed=2041)
    drawn.setup()
    assert drawn.selection == sorted(np.random.default_rng(2041).choice(10000, 16, replace=False).tolist())
    assert drawn.describe() == {"dataset": "mnist-test", "random": 16, "seed": 2041}
    among = MNISTDataModule(root=str(data_root), indices=[5, 50, 500, 5000], random=2, seed=1, num_images=1)
    among.setup()
    assert len(among.selection) == 2 and set(among.selection) <= {5, 50, 500, 5000}  # num_images not applied
    with pytest.raises(DipLightningError, match="at most 4"):
        MNISTDataModule(root=str(data_root), indices=[5, 50, 500, 5000], random=5).setup()


def test_every_process_gets_the_same_number_of_chunks_and_each_image_once(data_root):
    class FakeTrainer:
        world_size = 2

    seen = []
    for rank in range(2):
        dm = MNISTDataModule(root=str(data_root), indices=[4, 8, 15, 16, 23], chunk_size=2)
        dm.setup()
        FakeTrainer.global_rank = rank
        dm.trainer = FakeTrainer()
        assert dm.num_chunks() == 2
        loader = dm.train_dataloader()
        seen += [i for k in range(2) for i in loader.dataset[k]["index"].tolist()]
    assert sorted(seen) == [4, 8, 15, 16, 23]


def test_celeba_plain_folder_with_and_without_split_file(data_root, tmp_path):
    dm = CelebADataModule(root=str(data_root), num_images=3)
    dm.setup()
    assert dm.image_shape == (3, 64, 64) and len(dm.images) == 64
    face = dm.images[0]
    assert face.shape == (3, 64, 64) and face.std() > 0.05
    # a folder of 3 faces with a split file putting one of them in "valid"
    folder = tmp_path / "celeba" / "img_align_celeba"
    folder.mkdir(parents=True)
    names = sorted(p.name for p in (data_root / "celeba" / "img_align_celeba").glob("*.jpg"))[:3]
    for name in names:
        shutil.copy(data_root / "celeba" / "img_align_celeba" / name, folder / name)
    (tmp_path / "celeba" / "list_eval_partition.txt").write_text(
        f"{names[0]} 2\n{names[1]} 1\n{names[2]} 2\n"
    )
    test = CelebADataModule(root=str(tmp_path), split="test")
    test.setup()
    assert [p.name for p in test.images.files] == [names[0], names[2]]
    (tmp_path / "celeba" / "list_eval_partition.txt").unlink()
    everything = CelebADataModule(root=str(tmp_path), split="valid")
    everything.setup()
    assert len(everything.images) == 3
    torch.testing.assert_close(everything.images[0], face)


def test_missing_celeba_says_how_to_provide_it(tmp_path):
    with pytest.raises(DipLightningError, match="img_align_celeba"):
        CelebADataModule(root=str(tmp_path)).setup()


def test_image_folder_reads_sorted_files_and_rejects_nan(tmp_path):
    good = np.random.default_rng(0).random((32, 32))
    np.save(tmp_path / "b.npy", good)
    np.save(tmp_path / "a.npy", good * 0.5)
    dm = ImageFolderDataModule(root=str(tmp_path), image_size=32, channels=1)
    dm.setup()
    torch.testing.assert_close(dm.images[1][0], torch.tensor(good, dtype=torch.float32))
    bad = good.copy()
    bad[3, 3] = np.nan
    np.save(tmp_path / "c.npy", bad)
    with pytest.raises(DipLightningError, match="image 2 .* NaN"):
        ImageFolderDataModule(root=str(tmp_path), image_size=32, channels=1).setup()
