"""Nothing silently wrong: wrong content refused, decoding all-or-nothing, damaged copies rebuilt.

The tests build tiny IDX sets (30 training, 20 test items) and pin their digests in place of the
real ones, so nothing here needs the 47 MB files; the last tests check the real ones.
"""

import gzip
import hashlib
import random
import warnings
from pathlib import Path

import pytest
import torch

from fmnist_helpers import data as fdata
from fmnist_helpers.data import DataError, NonCanonicalError, load_fashion_mnist

SIZES = {"train": 30, "t10k": 20}
STEMS = list(fdata.FILES)  # train images, train labels, t10k images, t10k labels
THIRD = STEMS[2]


def _idx(magic: int, count: int, body: bytes) -> bytes:
    header = magic.to_bytes(4, "big") + count.to_bytes(4, "big")
    if magic == 2051:
        header += (28).to_bytes(4, "big") * 2
    return header + body


def _make_set(seed: int) -> dict[str, bytes]:
    """Four well-formed tiny files; another seed gives a lookalike (think MNIST) set."""
    rng = random.Random(seed)
    files = {}
    for prefix, n in SIZES.items():
        labels = [i % 10 for i in range(n)]
        rng.shuffle(labels)
        files[f"{prefix}-images-idx3-ubyte"] = _idx(2051, n, rng.randbytes(n * 784))
        files[f"{prefix}-labels-idx1-ubyte"] = _idx(2049, n, bytes(labels))
    return files


CANON = _make_set(0)
VARIANT = _make_set(1)


def _write(folder: Path, files: dict[str, bytes], gz: bool = True) -> Path:
    """Write a set as ``.gz`` files (like the Debian package) or decoded in torchvision's layout."""
    target = folder if gz else folder / "FashionMNIST" / "raw"
    target.mkdir(parents=True, exist_ok=True)
    for stem, raw in files.items():
        if gz:
            with gzip.open(target / f"{stem}.gz", "wb") as f:
                f.write(raw)
        else:
            (target / stem).write_bytes(raw)
    return folder


def _snapshot(folder: Path) -> dict[str, bytes | None]:
    """Every path under ``folder`` with its bytes (None for a folder); {} when it is absent."""
    if not folder.exists():
        return {}
    return {
        str(p.relative_to(folder)): p.read_bytes() if p.is_file() else None
        for p in sorted(folder.rglob("*"))
    } | {".": None}


def _labels(files: dict[str, bytes], prefix: str) -> torch.Tensor:
    return torch.tensor(list(files[f"{prefix}-labels-idx1-ubyte"][8:]))


@pytest.fixture
def tiny(tmp_path, monkeypatch):
    """Tiny item counts and CANON's digests pinned; a private project folder; no Debian package."""
    monkeypatch.setattr(fdata, "FILES", {
        stem: (magic, SIZES[stem.split("-")[0]]) for stem, (magic, _) in fdata.FILES.items()
    })
    digests = {stem: hashlib.sha256(raw).hexdigest() for stem, raw in CANON.items()}
    monkeypatch.setattr(fdata, "SHA256", digests)
    monkeypatch.setattr(fdata, "PROJECT_DATA_DIR", tmp_path / "project")
    monkeypatch.setattr(fdata, "DEBIAN_DIR", tmp_path / "nodebian")
    monkeypatch.delenv("FMNIST_DATA_DIR", raising=False)
    monkeypatch.delenv("FMNIST_ALLOW_NONCANONICAL", raising=False)
    return tmp_path


def _with_debian(tmp_path, monkeypatch) -> Path:
    """Install CANON as the Debian package and decode it into the project folder once."""
    monkeypatch.setattr(fdata, "DEBIAN_DIR", _write(tmp_path / "debian", CANON))
    assert "Debian package" in load_fashion_mnist(quick=False).source
    return fdata.PROJECT_DATA_DIR / "FashionMNIST" / "raw"


# --- content, not just format -------------------------------------------------------------

def test_tiny_canonical_set_loads_cleanly(tiny, monkeypatch):
    _write(tiny / "src", CANON)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        d = load_fashion_mnist(data_dir=tiny / "src", quick=False)
    assert "NON-CANONICAL" not in d.source
    assert torch.equal(d.test.labels, _labels(CANON, "t10k")) and len(d.train) == 30


@pytest.mark.parametrize("stem", STEMS)
@pytest.mark.parametrize("flag", [None, "0"])
def test_lookalike_file_is_rejected_naming_it(tiny, monkeypatch, stem, flag):
    """A valid IDX file with other content (MNIST digits, say) is refused, naming the file."""
    if flag is not None:
        monkeypatch.setenv("FMNIST_ALLOW_NONCANONICAL", flag)
    _write(tiny / "src", {**CANON, stem: VARIANT[stem]})
    with pytest.raises(NonCanonicalError, match="not the canonical Fashion-MNIST") as err:
        load_fashion_mnist(data_dir=tiny / "src", quick=False)
    text = str(err.value)
    assert str(tiny / "src" / f"{stem}.gz") in text
    assert "FMNIST_ALLOW_NONCANONICAL=1" in text and "apt-get install dataset-fashion-mnist" in text
    assert not fdata.PROJECT_DATA_DIR.exists()  # nothing decoded into the project


def test_lookalike_decoded_folder_is_rejected(tiny):
    _write(tiny / "src", {**CANON, THIRD: VARIANT[THIRD]}, gz=False)
    with pytest.raises(NonCanonicalError) as err:
        load_fashion_mnist(data_dir=tiny / "src", quick=False)
    assert str(tiny / "src" / "FashionMNIST" / "raw" / THIRD) in str(err.value)


def test_check_idx_refuses_wrong_content(tiny):
    path = tiny / THIRD
    path.write_bytes(VARIANT[THIRD])
    assert fdata.check_idx(tiny / "ok", THIRD, CANON[THIRD]) == CANON[THIRD]
    with pytest.raises(NonCanonicalError, match=str(path)):
        fdata.check_idx(path, THIRD)


@pytest.mark.parametrize("gz", [True, False])
def test_opt_in_warns_labels_source_and_keeps_variant_out_of_project_copy(
    tiny, monkeypatch, gz
):
    raw = _with_debian(tiny, monkeypatch)
    before = _snapshot(raw)
    monkeypatch.setenv("FMNIST_ALLOW_NONCANONICAL", "1")
    _write(tiny / "mine", VARIANT, gz=gz)
    with pytest.warns(UserWarning, match="not the canonical Fashion-MNIST") as caught:
        d = load_fashion_mnist(data_dir=tiny / "mine", quick=False)
    assert len(caught) == 4  # one per file, each naming it
    assert "NON-CANONICAL data" in d.source
    assert torch.equal(d.test.labels, _labels(VARIANT, "t10k"))
    assert _snapshot(raw) == before  # the canonical copy is untouched...
    variants = list(fdata.PROJECT_DATA_DIR.glob("noncanonical-*"))
    if gz:  # ...and the decoded variant sits apart, where only an explicit folder leads
        assert len(variants) == 1 and str(variants[0]) in d.source
    else:  # ...and a decoded variant is read where it is
        assert variants == [] and str(tiny / "mine") in d.source
    monkeypatch.delenv("FMNIST_ALLOW_NONCANONICAL")
    again = load_fashion_mnist(quick=False)  # the default sources: the canonical data
    assert "NON-CANONICAL" not in again.source
    assert torch.equal(again.test.labels, _labels(CANON, "t10k"))


def test_opt_in_with_canonical_data_changes_nothing(tiny, monkeypatch):
    monkeypatch.setenv("FMNIST_ALLOW_NONCANONICAL", "1")
    _write(tiny / "src", CANON)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        d = load_fashion_mnist(data_dir=tiny / "src", quick=False)
    assert "NON-CANONICAL" not in d.source
    assert (fdata.PROJECT_DATA_DIR / "FashionMNIST" / "raw" / THIRD).read_bytes() == CANON[THIRD]


# --- never half done --------------------------------------------------------------------

def _truncated(stem: str) -> bytes:
    return CANON[stem][:-5]


@pytest.mark.parametrize("bad", [VARIANT[THIRD], _truncated(THIRD)], ids=["lookalike", "truncated"])
@pytest.mark.parametrize("existing", [True, False], ids=["over-a-copy", "empty-project"])
def test_failure_in_third_file_leaves_project_folder_byte_identical(
    tiny, monkeypatch, bad, existing
):
    if existing:
        _with_debian(tiny, monkeypatch)
    before = _snapshot(fdata.PROJECT_DATA_DIR)
    _write(tiny / "src", {**CANON, THIRD: bad})
    with pytest.raises(DataError, match=f"{THIRD}.gz"):
        load_fashion_mnist(data_dir=tiny / "src", quick=False)
    assert _snapshot(fdata.PROJECT_DATA_DIR) == before


def test_write_failure_in_third_file_leaves_project_copy_byte_identical(tiny, monkeypatch):
    _with_debian(tiny, monkeypatch)
    before = _snapshot(fdata.PROJECT_DATA_DIR)
    real_write, calls = Path.write_bytes, []

    def disk_full_at_third(self, data):
        calls.append(self.name)
        if len(calls) == 3:
            raise OSError(28, "No space left on device")
        return real_write(self, data)

    monkeypatch.setattr(Path, "write_bytes", disk_full_at_third)
    with pytest.raises(OSError, match="No space left"):
        fdata.prepare_raw_folder(fdata.DEBIAN_DIR, fdata.PROJECT_DATA_DIR)
    assert calls[2] == THIRD
    assert _snapshot(fdata.PROJECT_DATA_DIR) == before


@pytest.mark.parametrize("damage", ["truncated", "lookalike"])
def test_damaged_project_copy_is_rebuilt_from_debian_with_notice(tiny, monkeypatch, damage):
    raw = _with_debian(tiny, monkeypatch)
    stem = "train-labels-idx1-ubyte"
    (raw / stem).write_bytes(_truncated(stem) if damage == "truncated" else VARIANT[stem])
    with pytest.warns(UserWarning, match="is damaged, rebuilding it from") as caught:
        d = load_fashion_mnist(quick=False)
    assert len(caught) == 1 and "\n" not in str(caught[0].message)
    assert str(raw / stem) in str(caught[0].message)
    assert (raw / stem).read_bytes() == CANON[stem]
    assert torch.equal(d.train.labels, _labels(CANON, "train"))
    assert "Debian package" in d.source


@pytest.mark.parametrize("damage", ["truncated", "lookalike"])
def test_damaged_project_copy_without_source_is_a_clear_error(tiny, monkeypatch, damage):
    raw = _with_debian(tiny, monkeypatch)
    monkeypatch.setattr(fdata, "DEBIAN_DIR", tiny / "nodebian")  # the package is gone
    monkeypatch.setenv("FMNIST_ALLOW_NONCANONICAL", "1")  # no help for the project's own copy
    stem = "t10k-labels-idx1-ubyte"
    (raw / stem).write_bytes(_truncated(stem) if damage == "truncated" else VARIANT[stem])
    before = _snapshot(fdata.PROJECT_DATA_DIR)
    with pytest.raises(DataError) as err:
        load_fashion_mnist(quick=False)
    text = str(err.value)
    for expected in (str(raw / stem), "cannot be rebuilt", f"delete {raw}",
                     "apt-get install dataset-fashion-mnist", "FMNIST_DATA_DIR"):
        assert expected in text
    assert "FMNIST_ALLOW_NONCANONICAL" not in text
    assert _snapshot(fdata.PROJECT_DATA_DIR) == before


def test_legacy_processed_folder_is_not_loaded(tiny, monkeypatch):
    """torchvision's class would load an unchecked ``processed/`` folder before the raw files."""
    raw = _with_debian(tiny, monkeypatch)
    processed = raw.parent / "processed"
    processed.mkdir()
    for name, n in (("training.pt", 30), ("test.pt", 20)):
        torch.save((torch.zeros(n, 28, 28, dtype=torch.uint8), torch.zeros(n)), processed / name)
    d = load_fashion_mnist(quick=False)
    assert torch.equal(d.test.labels, _labels(CANON, "t10k"))


# --- the real files ---------------------------------------------------------------------

# MD5s of the decoded canonical files as public loaders list them next to torchvision's MD5s
# of the .gz files (8d4fb7e6..., 25c81989..., bef4ecab..., bb300cfd...): an independent check
# that the Debian package decodes to the canonical bytes.
DECODED_MD5 = {
    "train-images-idx3-ubyte": "f4a8712d7a061bf5bd6d2ca38dc4d50a",
    "train-labels-idx1-ubyte": "9018921c3c673c538a1fc5bad174d6f9",
    "t10k-images-idx3-ubyte": "8181f5470baa50b63fa0f6fddb340f0a",
    "t10k-labels-idx1-ubyte": "15d484375f8d13e6eb1aabb0c3f46965",
}


@pytest.mark.skipif(not fdata.DEBIAN_DIR.is_dir(), reason="dataset-fashion-mnist not installed")
@pytest.mark.parametrize("stem", STEMS)
def test_debian_package_decodes_to_the_pinned_digests(stem):
    with gzip.open(fdata.DEBIAN_DIR / f"{stem}.gz", "rb") as f:
        decoded = f.read()
    assert hashlib.sha256(decoded).hexdigest() == fdata.SHA256[stem]
    assert hashlib.md5(decoded).hexdigest() == DECODED_MD5[stem]
    assert fdata.check_idx(fdata.DEBIAN_DIR / f"{stem}.gz", stem) == decoded
