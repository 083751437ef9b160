import gzip
import hashlib

import pytest
import torch

from fmnist_helpers import data as fdata
from fmnist_helpers.data import (
    CLASSES,
    FILES,
    DataError,
    check_idx,
    load_fashion_mnist,
    stratified_indices,
)


def test_full_dataset_is_the_real_one():
    d = load_fashion_mnist(quick=False)
    assert d.train.images.shape == (60_000, 28, 28)
    assert d.test.images.shape == (10_000, 28, 28)
    assert d.train.images.dtype == torch.float32 and d.train.labels.dtype == torch.int64
    assert d.train.class_counts() == [6000] * 10 and d.test.class_counts() == [1000] * 10
    assert 0.0 == d.train.images.min() and d.train.images.max() == 1.0
    assert len(d.classes) == 10 and d.classes[0] == "T-shirt/top"


def test_scaling_is_exactly_totensor(quick_data):
    from torchvision.datasets import FashionMNIST
    from torchvision.transforms import ToTensor

    root, _ = fdata.locate()
    tv = FashionMNIST(str(root), train=False, download=False, transform=ToTensor())
    ours = load_fashion_mnist(quick=False).test
    for i in (0, 1, 4321, 9999):
        image, label = tv[i]
        assert torch.equal(image[0], ours.images[i]) and label == ours.labels[i]


def test_quick_subset_is_stratified_and_fixed(quick_data):
    assert quick_data.train.class_counts() == [fdata.QUICK_TRAIN_PER_CLASS] * 10
    assert quick_data.test.class_counts() == [fdata.QUICK_TEST_PER_CLASS] * 10
    again = load_fashion_mnist(quick=True)
    assert torch.equal(again.train.images, quick_data.train.images)
    assert "quick" in quick_data.source


def test_stratified_indices_refuse_too_many():
    with pytest.raises(ValueError, match="class 0 has only"):
        stratified_indices(torch.zeros(5, dtype=torch.long), 10)


# --- bad files: each gives an error naming the file ---------------------------------------

def _idx(magic: int, count: int, body: bytes, dims=(28, 28)) -> bytes:
    header = magic.to_bytes(4, "big") + count.to_bytes(4, "big")
    if magic == 2051:
        header += b"".join(d.to_bytes(4, "big") for d in dims)
    return header + body


def _write_set(folder, overrides=None):
    """Four small-but-well-formed files; ``overrides`` swaps one for bad bytes."""
    folder.mkdir(parents=True, exist_ok=True)
    for stem, (magic, count) in FILES.items():
        item = 784 if magic == 2051 else 1
        raw = _idx(magic, count, bytes(count * item))
        raw = (overrides or {}).get(stem, raw)
        with gzip.open(folder / f"{stem}.gz", "wb") as f:
            f.write(raw)


def _pin_digests_of_write_set(monkeypatch):
    """Pin the digests of ``_write_set``'s all-zero files, so that only the bad file fails."""
    digests = {}
    for stem, (magic, count) in FILES.items():
        item = 784 if magic == 2051 else 1
        digests[stem] = hashlib.sha256(_idx(magic, count, bytes(count * item))).hexdigest()
    monkeypatch.setattr(fdata, "SHA256", digests)


LABELS = "t10k-labels-idx1-ubyte"
IMAGES = "t10k-images-idx3-ubyte"


@pytest.mark.parametrize(
    "stem, raw, message",
    [
        (LABELS, _idx(2051, 10_000, bytes(10_000)), "magic number 2051, expected 2049"),
        (LABELS, _idx(2049, 9_999, bytes(9_999)), "holds 9999 items, expected 10000"),
        (LABELS, _idx(2049, 10_000, bytes(9_000)), "truncated or padded"),
        (LABELS, _idx(2049, 10_000, bytes(9_999) + b"\x0c"), "contains label 12"),
        (IMAGES, _idx(2051, 10_000, bytes(10_000 * 784), dims=(32, 32)), "images are 32x32"),
        (IMAGES, b"\x00\x00", "too short"),
    ],
)
def test_bad_file_is_named(tmp_path, monkeypatch, stem, raw, message):
    monkeypatch.setattr(fdata, "PROJECT_DATA_DIR", tmp_path / "project")
    _pin_digests_of_write_set(monkeypatch)
    _write_set(tmp_path / "src", {stem: raw})
    with pytest.raises(DataError, match=message) as err:
        load_fashion_mnist(data_dir=tmp_path / "src")
    assert f"{stem}.gz" in str(err.value)


def test_truncated_gzip_is_named(tmp_path, monkeypatch):
    monkeypatch.setattr(fdata, "PROJECT_DATA_DIR", tmp_path / "project")
    _pin_digests_of_write_set(monkeypatch)
    _write_set(tmp_path / "src")
    path = tmp_path / "src" / f"{LABELS}.gz"
    path.write_bytes(path.read_bytes()[:40])
    with pytest.raises(DataError, match="truncated or corrupted") as err:
        load_fashion_mnist(data_dir=tmp_path / "src")
    assert str(path) in str(err.value)


def test_bad_file_in_project_folder_is_caught_at_load(tmp_path, monkeypatch):
    """A decoded file damaged after preparation is still caught, not silently loaded."""
    monkeypatch.delenv("FMNIST_DATA_DIR", raising=False)
    monkeypatch.setattr(fdata, "PROJECT_DATA_DIR", tmp_path / "project")
    monkeypatch.setattr(fdata, "DEBIAN_DIR", tmp_path / "nodebian")  # nothing to rebuild from
    _write_set(tmp_path / "src")
    _pin_digests_of_write_set(monkeypatch)
    fdata.prepare_raw_folder(tmp_path / "src", tmp_path / "project")
    bad = tmp_path / "project" / "FashionMNIST" / "raw" / "train-labels-idx1-ubyte"
    bad.write_bytes(bad.read_bytes()[:-5])
    with pytest.raises(DataError, match="train-labels-idx1-ubyte"):
        load_fashion_mnist()


def test_missing_file_in_explicit_dir(tmp_path):
    _write_set(tmp_path / "src")
    (tmp_path / "src" / f"{IMAGES}.gz").unlink()
    with pytest.raises(DataError, match="does not hold the four Fashion-MNIST files"):
        load_fashion_mnist(data_dir=tmp_path / "src")


def test_no_source_lists_what_was_tried_and_the_fixes(tmp_path, monkeypatch):
    import torchvision.datasets

    monkeypatch.delenv("FMNIST_DATA_DIR", raising=False)
    monkeypatch.setattr(fdata, "PROJECT_DATA_DIR", tmp_path / "project")
    monkeypatch.setattr(fdata, "DEBIAN_DIR", tmp_path / "nodebian")

    def offline(*args, **kwargs):
        raise OSError("no network")

    monkeypatch.setattr(torchvision.datasets, "FashionMNIST", offline)
    with pytest.raises(DataError) as err:
        load_fashion_mnist()
    text = str(err.value)
    for expected in ("FMNIST_DATA_DIR", "nodebian", "no network",
                     "apt-get install dataset-fashion-mnist"):
        assert expected in text


@pytest.mark.skipif(not fdata.DEBIAN_DIR.is_dir(), reason="dataset-fashion-mnist not installed")
def test_debian_package_is_decoded_into_torchvision_layout(tmp_path, monkeypatch):
    monkeypatch.delenv("FMNIST_DATA_DIR", raising=False)
    monkeypatch.setattr(fdata, "PROJECT_DATA_DIR", tmp_path / "project")
    d = load_fashion_mnist(quick=False)  # the whole test set, even under FMNIST_QUICK=1
    assert "Debian package" in d.source
    raw = tmp_path / "project" / "FashionMNIST" / "raw"
    assert sorted(p.name for p in raw.iterdir()) == sorted(FILES)
    assert check_idx(raw / LABELS, LABELS)[8:] == bytes(d.test.labels.tolist())


def test_classes_are_the_ten_fashion_classes():
    assert CLASSES[-1] == "Ankle boot" and len(set(CLASSES)) == 10
