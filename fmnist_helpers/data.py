"""Fashion-MNIST as tensors in memory: find the files, check them, load them, batch them.

Where the files come from, first match wins:

1. an explicit directory: the ``data_dir`` argument or the ``FMNIST_DATA_DIR`` environment variable;
2. the project's own data folder, ``data/`` at the top of the repository (git-ignored);
3. the Debian/Ubuntu package ``dataset-fashion-mnist`` (``/usr/share/datasets/fashion-mnist``),
   whose gzip files are decoded into the project's data folder in torchvision's layout;
4. torchvision's own download (needs internet).

Pixels are scaled to [0, 1] exactly as ``torchvision.transforms.ToTensor`` does (``uint8 / 255``),
and nothing else is done to them, as in the study.
"""

from __future__ import annotations

import gzip
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch

CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)
N_CLASSES = len(CLASSES)
IMAGE_SIZE = 28

# file stem -> (IDX magic number, number of items) of the canonical release
FILES = {
    "train-images-idx3-ubyte": (2051, 60_000),
    "train-labels-idx1-ubyte": (2049, 60_000),
    "t10k-images-idx3-ubyte": (2051, 10_000),
    "t10k-labels-idx1-ubyte": (2049, 10_000),
}
DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")
PROJECT_DATA_DIR = Path(__file__).resolve().parent.parent / "data"

# Quick mode: a stratified real subset, small enough for the test suite.
QUICK_TRAIN_PER_CLASS = 200
QUICK_TEST_PER_CLASS = 50


class DataError(RuntimeError):
    """The Fashion-MNIST files are missing, truncated or not what they claim to be."""


def quick_mode() -> bool:
    """Return True when ``FMNIST_QUICK`` asks for the short, small-subset settings."""
    return os.environ.get("FMNIST_QUICK", "").strip().lower() in {"1", "true", "yes", "on"}


@dataclass
class Split:
    """Images ``(N, 28, 28)`` float32 in [0, 1] and labels ``(N,)`` int64, on one device."""

    images: torch.Tensor
    labels: torch.Tensor

    def __len__(self) -> int:
        return len(self.labels)

    def to(self, device: torch.device | str) -> Split:
        return Split(self.images.to(device), self.labels.to(device))

    def take(self, index: torch.Tensor) -> Split:
        return Split(self.images[index], self.labels[index])

    def class_counts(self) -> list[int]:
        return torch.bincount(self.labels.cpu(), minlength=N_CLASSES).tolist()


@dataclass
class FashionMNIST:
    """The train and test splits plus the class names, ready for training."""

    train: Split
    test: Split
    source: str
    classes: tuple[str, ...] = CLASSES

    def to(self, device: torch.device | str) -> FashionMNIST:
        return FashionMNIST(self.train.to(device), self.test.to(device), self.source, self.classes)


# ---------------------------------------------------------------------------------------------
# Checking the IDX files
# ---------------------------------------------------------------------------------------------

def _read_maybe_gzip(path: Path) -> bytes:
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as f:
                return f.read()
        return path.read_bytes()
    except (OSError, EOFError, gzip.BadGzipFile) as e:
        raise DataError(
            f"{path}: cannot be read ({e}). The file is truncated or corrupted: delete it and "
            "fetch it again (apt-get install --reinstall dataset-fashion-mnist, or remove the "
            "project's data/ folder to let torchvision download it)."
        ) from e


def check_idx(path: Path, stem: str, raw: bytes | None = None) -> bytes:
    """Check one IDX file against the canonical release and return its decoded bytes.

    Raises :class:`DataError` naming the file for a bad magic number, a wrong item count,
    a wrong image size, a truncated body or labels outside 0-9.
    """
    magic, count = FILES[stem]
    data = _read_maybe_gzip(path) if raw is None else raw
    fix = "replace it with the real Fashion-MNIST file"
    if len(data) < 8:
        raise DataError(f"{path}: only {len(data)} bytes, too short for an IDX header; {fix}.")
    got_magic = int.from_bytes(data[0:4], "big")
    got_count = int.from_bytes(data[4:8], "big")
    if got_magic != magic:
        raise DataError(f"{path}: magic number {got_magic}, expected {magic} for {stem}; {fix}.")
    if got_count != count:
        raise DataError(f"{path}: holds {got_count} items, expected {count} for {stem}; {fix}.")
    header = 8
    item = 1
    if magic == 2051:
        rows = int.from_bytes(data[8:12], "big")
        cols = int.from_bytes(data[12:16], "big")
        if (rows, cols) != (IMAGE_SIZE, IMAGE_SIZE):
            raise DataError(f"{path}: images are {rows}x{cols}, expected 28x28; {fix}.")
        header, item = 16, IMAGE_SIZE * IMAGE_SIZE
    expected = header + count * item
    if len(data) != expected:
        raise DataError(
            f"{path}: {len(data)} bytes once decoded, expected {expected} "
            f"(truncated or padded); {fix}."
        )
    if magic == 2049:
        top = max(data[header:])
        if top >= N_CLASSES:
            raise DataError(f"{path}: contains label {top}, labels must be 0-9; {fix}.")
    return data


def _find(directory: Path, stem: str) -> Path | None:
    """Find ``stem`` or ``stem.gz`` in a directory or in torchvision's layout below it."""
    for folder in (directory, directory / "raw", directory / "FashionMNIST" / "raw"):
        for name in (stem, stem + ".gz"):
            if (folder / name).is_file():
                return folder / name
    return None


def _raw_folder(root: Path) -> Path:
    return root / "FashionMNIST" / "raw"


def prepare_raw_folder(source_dir: Path, root: Path) -> None:
    """Check the four files in ``source_dir`` and write them, decoded, in torchvision's layout.

    Each file is written to a temporary name and renamed, so an interrupted copy never
    leaves a half-written file behind.
    """
    raw = _raw_folder(root)
    raw.mkdir(parents=True, exist_ok=True)
    for stem in FILES:
        src = _find(source_dir, stem)
        if src is None:
            raise DataError(f"{source_dir}: {stem}(.gz) is missing.")
        data = check_idx(src, stem)
        with tempfile.NamedTemporaryFile(dir=raw, delete=False, suffix=".part") as tmp:
            tmp.write(data)
        os.replace(tmp.name, raw / stem)


def _complete(directory: Path) -> bool:
    return all(_find(directory, stem) is not None for stem in FILES)


def locate(data_dir: str | Path | None = None) -> tuple[Path, str]:
    """Return a root holding ``FashionMNIST/raw`` (decoded) and a note of where it came from."""
    tried = []
    explicit = data_dir if data_dir is not None else os.environ.get("FMNIST_DATA_DIR")
    if explicit:
        path = Path(explicit).expanduser()
        if not _complete(path):
            raise DataError(
                f"{path} (from {'data_dir' if data_dir is not None else 'FMNIST_DATA_DIR'}) does "
                f"not hold the four Fashion-MNIST files ({', '.join(FILES)}, optionally .gz). "
                "Point it at a folder that does, or unset it to use the default sources."
            )
        if all((_raw_folder(path) / stem).is_file() for stem in FILES):
            return path, f"{path}"
        # gzip files or a flat folder: decode them into the project's data folder
        prepare_raw_folder(path, PROJECT_DATA_DIR)
        return PROJECT_DATA_DIR, f"{path} (decoded into {PROJECT_DATA_DIR})"
    tried.append("FMNIST_DATA_DIR: not set")

    if all((_raw_folder(PROJECT_DATA_DIR) / stem).is_file() for stem in FILES):
        return PROJECT_DATA_DIR, f"{PROJECT_DATA_DIR}"
    tried.append(f"{_raw_folder(PROJECT_DATA_DIR)}: not there yet")

    if _complete(DEBIAN_DIR):
        prepare_raw_folder(DEBIAN_DIR, PROJECT_DATA_DIR)
        return PROJECT_DATA_DIR, f"{DEBIAN_DIR} (Debian package, decoded into {PROJECT_DATA_DIR})"
    tried.append(f"{DEBIAN_DIR}: not installed")

    try:
        from torchvision.datasets import FashionMNIST as TorchvisionFashionMNIST

        for train in (True, False):
            TorchvisionFashionMNIST(str(PROJECT_DATA_DIR), train=train, download=True)
        return PROJECT_DATA_DIR, "torchvision download"
    except Exception as e:  # no network, proxy, server down...
        tried.append(f"torchvision download: {type(e).__name__}: {e}")
    raise DataError(
        "Fashion-MNIST was not found. Tried:\n  - " + "\n  - ".join(tried) + "\n"
        "Fix it one of two ways:\n"
        "  1. sudo apt-get install dataset-fashion-mnist   (Debian/Ubuntu, works offline after)\n"
        "  2. put the four files (train-images-idx3-ubyte.gz, ...) in a folder and set\n"
        "     FMNIST_DATA_DIR=/that/folder (or pass data_dir=...)"
    )


def _load_split(root: Path, train: bool) -> Split:
    from torchvision.datasets import FashionMNIST as TorchvisionFashionMNIST

    prefix = "train" if train else "t10k"
    raw = _raw_folder(root)
    images_stem, labels_stem = f"{prefix}-images-idx3-ubyte", f"{prefix}-labels-idx1-ubyte"
    check_idx(raw / images_stem, images_stem)
    check_idx(raw / labels_stem, labels_stem)
    ds = TorchvisionFashionMNIST(str(root), train=train, download=False)
    # Exactly what ToTensor() does to a uint8 image: to float32, divide by 255.
    return Split(ds.data.to(torch.float32).div(255), ds.targets.to(torch.int64))


def stratified_indices(labels: torch.Tensor, per_class: int, seed: int = 0) -> torch.Tensor:
    """Pick ``per_class`` random indices from each class, returned in a shuffled order."""
    g = torch.Generator().manual_seed(seed)
    labels = labels.cpu()
    picks = []
    for c in range(N_CLASSES):
        idx = torch.nonzero(labels == c).flatten()
        if len(idx) < per_class:
            raise ValueError(f"class {c} has only {len(idx)} examples, asked for {per_class}")
        picks.append(idx[torch.randperm(len(idx), generator=g)[:per_class]])
    out = torch.cat(picks)
    return out[torch.randperm(len(out), generator=g)]


def load_fashion_mnist(
    data_dir: str | Path | None = None, quick: bool | None = None
) -> FashionMNIST:
    """Load the real Fashion-MNIST into memory (CPU tensors).

    With ``quick`` (default: the ``FMNIST_QUICK`` environment variable) a fixed stratified subset
    is returned: 200 training and 50 test images per class.
    """
    quick = quick_mode() if quick is None else quick
    root, source = locate(data_dir)
    data = FashionMNIST(_load_split(root, True), _load_split(root, False), source)
    if quick:
        data = FashionMNIST(
            data.train.take(stratified_indices(data.train.labels, QUICK_TRAIN_PER_CLASS)),
            data.test.take(stratified_indices(data.test.labels, QUICK_TEST_PER_CLASS)),
            source + " [quick subset]",
        )
    return data


def validation_split(train: Split, size: int, seed: int = 0) -> tuple[Split, Split]:
    """Hold out a stratified validation set of ``size`` images; return (train, validation)."""
    if not 0 < size < len(train):
        raise ValueError(f"validation size must be between 1 and {len(train) - 1}, got {size}")
    if size % N_CLASSES:
        raise ValueError(f"validation size must be a multiple of {N_CLASSES}, got {size}")
    held = stratified_indices(train.labels, size // N_CLASSES, seed)
    keep = torch.ones(len(train), dtype=torch.bool)
    keep[held] = False
    return train.take(torch.nonzero(keep).flatten()), train.take(held)


def minibatches(
    split: Split, batch_size: int, generator: torch.Generator | None = None
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Yield ``(images, labels)`` batches; shuffled when a generator is given.

    Same semantics as ``DataLoader(dataset, batch_size, shuffle=True)``: a fresh permutation
    each call (each epoch), every example once, the last batch possibly smaller.
    """
    n = len(split)
    if generator is None:
        for i in range(0, n, batch_size):
            yield split.images[i : i + batch_size], split.labels[i : i + batch_size]
        return
    order = torch.randperm(n, generator=generator).to(split.labels.device)
    for i in range(0, n, batch_size):
        idx = order[i : i + batch_size]
        yield split.images[idx], split.labels[idx]


def clear_project_data() -> None:
    """Delete the project's decoded copy of the data (it is rebuilt on the next load)."""
    shutil.rmtree(PROJECT_DATA_DIR / "FashionMNIST", ignore_errors=True)
