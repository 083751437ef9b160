"""Fashion-MNIST as tensors in memory: find the files, check them, load them.

Where the files come from, first match wins:

1. an explicit directory: the ``data_dir`` argument or the ``FMNIST_DATA_DIR`` environment variable;
2. the project's own data folder, ``data/`` at the top of the repository (git-ignored);
3. the Debian/Ubuntu package ``dataset-fashion-mnist`` (``/usr/share/datasets/fashion-mnist``),
   whose gzip files are decoded into the project's data folder in torchvision's layout;
4. torchvision's own download (needs internet).

Every decoded file is checked, at every load, for its format and for its content: its SHA-256
must be the canonical release's (``SHA256``), so MNIST digits or an edited copy in the same
format are refused, naming the file. Decoding writes to a staging folder that is swapped in only
once all four files pass, so a failure leaves ``data/`` as it was; a damaged copy in ``data/`` is
rebuilt from the Debian package. ``FMNIST_ALLOW_NONCANONICAL=1`` accepts a variant on purpose:
a warning instead of an error, "NON-CANONICAL data" in the source line, and the decoded variant
kept apart in ``data/noncanonical-<digest>/``, never in the canonical ``data/FashionMNIST/``.

Pixels are scaled to [0, 1] exactly as ``torchvision.transforms.ToTensor`` does (``uint8 / 255``),
and nothing else is done to them, as in the study.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch

from .settings import quick_mode  # FMNIST_QUICK, read in settings; importable from here too

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
# SHA-256 of each DECODED (un-gzipped) file of the canonical release, zalandoresearch/fashion-mnist.
# Computed from the decoded files of Debian's dataset-fashion-mnist, and identical to the digests
# an independent project pins for the files it gunzips from Zalando's own download mirror:
# github.com/EntroMorphic/sstt, Makefile, variables SHA256F_* (at commit 076c2065c98b).
# Cross-check: torchvision pins the MD5s of the .gz files (FashionMNIST.resources), which Debian's
# .gz files miss only because their gzip headers differ; the MD5s of Debian's decoded files equal
# the decoded-file MD5s that public loaders list beside torchvision's .gz MD5s
# (tests/test_data_integrity.py checks both against the installed package).
SHA256 = {
    "train-images-idx3-ubyte": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
    "train-labels-idx1-ubyte": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
    "t10k-images-idx3-ubyte": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
    "t10k-labels-idx1-ubyte": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
}
ALLOW_NONCANONICAL_ENV = "FMNIST_ALLOW_NONCANONICAL"
DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")
PROJECT_DATA_DIR = Path(__file__).resolve().parent.parent / "data"

# Quick mode: a stratified real subset, small enough for the test suite.
QUICK_TRAIN_PER_CLASS = 200
QUICK_TEST_PER_CLASS = 50


class DataError(RuntimeError):
    """The Fashion-MNIST files are missing, truncated or not what they claim to be."""


class NonCanonicalError(DataError):
    """A well-formed IDX file whose content is not the canonical Fashion-MNIST."""

    def __init__(self, what: str) -> None:
        super().__init__(
            f"{what}. Replace it with the real file (sudo apt-get install dataset-fashion-mnist, "
            "or the four files of github.com/zalandoresearch/fashion-mnist), or set "
            f"{ALLOW_NONCANONICAL_ENV}=1 to use your own variant on purpose."
        )
        self.what = what


def allow_noncanonical() -> bool:
    """Return True when ``FMNIST_ALLOW_NONCANONICAL`` accepts data that is not Fashion-MNIST."""
    flag = os.environ.get(ALLOW_NONCANONICAL_ENV, "")
    return flag.strip().lower() in {"1", "true", "yes", "on"}


@dataclass
class Split:
    """Images ``(N, 28, 28)`` float32 in [0, 1] and labels ``(N,)`` int64, on one device."""

    images: torch.Tensor
    labels: torch.Tensor

    def __len__(self) -> int:
        return len(self.labels)

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
    a wrong image size, a truncated body or labels outside 0-9, and its subclass
    :class:`NonCanonicalError` for a well-formed file whose SHA-256 is not the pinned one
    (MNIST digits, say, or an edited copy).
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
    digest = hashlib.sha256(data).hexdigest()
    if digest != SHA256[stem]:
        raise NonCanonicalError(
            f"{path}: a well-formed {stem}, but not the canonical Fashion-MNIST "
            f"(SHA-256 {digest}, expected {SHA256[stem]}; MNIST digits, say, look like this)"
        )
    return data


def _read_checked(path: Path, stem: str, allow: bool) -> tuple[bytes, bool]:
    """Read and check one file; return its decoded bytes and whether they are canonical.

    With ``allow`` a non-canonical file gives a warning instead of :class:`NonCanonicalError`.
    """
    data = _read_maybe_gzip(path)
    try:
        return check_idx(path, stem, data), True
    except NonCanonicalError as e:
        if not allow:
            raise
        warnings.warn(f"{e.what}; used anyway, as {ALLOW_NONCANONICAL_ENV} is set.", stacklevel=4)
        return data, False


def _find(directory: Path, stem: str) -> Path | None:
    """Find ``stem`` or ``stem.gz`` in a directory or in torchvision's layout below it."""
    for folder in (directory, directory / "raw", directory / "FashionMNIST" / "raw"):
        for name in (stem, stem + ".gz"):
            if (folder / name).is_file():
                return folder / name
    return None


def _raw_folder(root: Path) -> Path:
    return root / "FashionMNIST" / "raw"


def _has_decoded(root: Path) -> bool:
    """True when all four decoded files are in ``root/FashionMNIST/raw`` (checked or not)."""
    return all((_raw_folder(root) / stem).is_file() for stem in FILES)


def _check_decoded(root: Path, allow: bool) -> bool:
    """Check the four decoded files under ``root``; return whether all of them are canonical."""
    raw = _raw_folder(root)
    # a list, not a generator: every file is checked (and warned about), not just the first
    return all([_read_checked(raw / stem, stem, allow)[1] for stem in FILES])


def _read_set(source_dir: Path, allow: bool) -> tuple[dict[str, bytes], bool]:
    """Read and check the four files of ``source_dir``: their decoded bytes, and if canonical."""
    files, canonical = {}, True
    for stem in FILES:
        src = _find(source_dir, stem)
        if src is None:
            raise DataError(f"{source_dir}: {stem}(.gz) is missing.")
        files[stem], ok = _read_checked(src, stem, allow)
        canonical = canonical and ok
    return files, canonical


def _swap_in(staging: Path, raw: Path) -> None:
    """Replace the folder ``raw`` by ``staging``; the old folder is put back if that fails."""
    old = staging.with_name(staging.name + "-old")
    if raw.exists():
        os.replace(raw, old)
    try:
        os.replace(staging, raw)
    except OSError:
        if old.exists():
            os.replace(old, raw)
        raise
    shutil.rmtree(old, ignore_errors=True)


def _install(files: dict[str, bytes], root: Path) -> None:
    """Write checked, decoded files to a staging folder, then swap it in as the raw folder."""
    raw = _raw_folder(root)
    raw.parent.mkdir(parents=True, exist_ok=True)
    staging = raw.parent / f".raw-staging-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)  # left over by a killed run
    staging.mkdir()
    try:
        for stem, data in files.items():
            (staging / stem).write_bytes(data)
        _swap_in(staging, raw)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _set_digest(files: dict[str, bytes]) -> str:
    h = hashlib.sha256()
    for data in files.values():
        h.update(data)
    return h.hexdigest()[:12]


def prepare_raw_folder(source_dir: Path, root: Path) -> Path:
    """Check the four files in ``source_dir`` and install them, decoded, in torchvision's layout.

    Nothing is written until all four pass; they then go to a staging folder that is swapped
    in whole, so a failure part way leaves ``root`` as it was. Returns the root they went to:
    ``root``, or ``root/noncanonical-<digest>`` for a variant accepted under
    ``FMNIST_ALLOW_NONCANONICAL=1``, so that a variant never takes the canonical copy's place.
    """
    files, canonical = _read_set(source_dir, allow_noncanonical())
    target = root if canonical else root / f"noncanonical-{_set_digest(files)}"
    _install(files, target)
    return target


def _complete(directory: Path) -> bool:
    return all(_find(directory, stem) is not None for stem in FILES)


def _label(note: str, canonical: bool) -> str:
    """The source line: ``note``, flagged when the data is not the canonical Fashion-MNIST."""
    return note if canonical else f"NON-CANONICAL data: {note}"


def _from_explicit(path: Path, origin: str) -> tuple[Path, str]:
    """Use (or decode into the project's data folder) the files of an explicit folder."""
    if not _complete(path):
        raise DataError(
            f"{path} (from {origin}) does "
            f"not hold the four Fashion-MNIST files ({', '.join(FILES)}, optionally .gz). "
            "Point it at a folder that does, or unset it to use the default sources."
        )
    if _has_decoded(path):
        return path, _label(f"{path}", _check_decoded(path, allow_noncanonical()))
    # gzip files or a flat folder: decode them into the project's data folder
    root = prepare_raw_folder(path, PROJECT_DATA_DIR)
    return root, _label(f"{path} (decoded into {root})", root == PROJECT_DATA_DIR)


def _from_debian() -> tuple[Path, str]:
    """Decode the Debian package's files into the project's data folder."""
    root = prepare_raw_folder(DEBIAN_DIR, PROJECT_DATA_DIR)
    note = f"{DEBIAN_DIR} (Debian package, decoded into {root})"
    return root, _label(note, root == PROJECT_DATA_DIR)


def _rebuild_project_copy(problem: DataError) -> tuple[Path, str]:
    """Rebuild a damaged copy in the project's data folder from the Debian package, or say how."""
    raw = _raw_folder(PROJECT_DATA_DIR)
    what = getattr(problem, "what", problem)  # without the opt-in hint: not for this folder
    if not _complete(DEBIAN_DIR):
        raise DataError(
            f"{what}\nThe project's copy in {raw} is damaged and cannot be rebuilt here "
            f"({DEBIAN_DIR} is not installed). Fix it one of three ways: delete {raw} and load "
            "again to download it with torchvision (needs internet); sudo apt-get install "
            "dataset-fashion-mnist; or set FMNIST_DATA_DIR to a folder holding the four files."
        ) from problem
    warnings.warn(f"{raw} is damaged, rebuilding it from {DEBIAN_DIR}: {what}", stacklevel=3)
    return _from_debian()


def _from_project() -> tuple[Path, str]:
    """Use the project's decoded copy after checking it; a damaged one is rebuilt."""
    try:
        _check_decoded(PROJECT_DATA_DIR, allow=False)  # only ever canonical data here
    except DataError as e:
        return _rebuild_project_copy(e)
    return PROJECT_DATA_DIR, f"{PROJECT_DATA_DIR}"


def locate(data_dir: str | Path | None = None) -> tuple[Path, str]:
    """Return a root holding ``FashionMNIST/raw`` (decoded and checked) and where it came from."""
    tried = []
    explicit = data_dir if data_dir is not None else os.environ.get("FMNIST_DATA_DIR")
    if explicit:
        origin = "data_dir" if data_dir is not None else "FMNIST_DATA_DIR"
        return _from_explicit(Path(explicit).expanduser(), origin)
    tried.append("FMNIST_DATA_DIR: not set")

    if _has_decoded(PROJECT_DATA_DIR):
        return _from_project()
    tried.append(f"{_raw_folder(PROJECT_DATA_DIR)}: not there yet")

    if _complete(DEBIAN_DIR):
        return _from_debian()
    tried.append(f"{DEBIAN_DIR}: not installed")

    try:
        from torchvision.datasets import FashionMNIST as TorchvisionFashionMNIST

        for train in (True, False):
            TorchvisionFashionMNIST(str(PROJECT_DATA_DIR), train=train, download=True)
    except Exception as e:  # no network, proxy, server down...
        tried.append(f"torchvision download: {type(e).__name__}: {e}")
    else:
        _check_decoded(PROJECT_DATA_DIR, allow=False)
        return PROJECT_DATA_DIR, "torchvision download"
    raise DataError(
        "Fashion-MNIST was not found. Tried:\n  - " + "\n  - ".join(tried) + "\n"
        "Fix it one of two ways:\n"
        "  1. sudo apt-get install dataset-fashion-mnist   (Debian/Ubuntu, works offline after)\n"
        "  2. put the four files (train-images-idx3-ubyte.gz, ...) in a folder and set\n"
        "     FMNIST_DATA_DIR=/that/folder (or pass data_dir=...)"
    )


def _load_split(root: Path, train: bool) -> Split:
    """Read one split from the decoded files that :func:`locate` has checked.

    The files' headers were checked there, so the bodies are read as they are: uint8 pixels
    after a 16-byte header, uint8 labels after an 8-byte one (torchvision's own reader gives
    the same tensors, but importing torchvision takes longer than reading the data).
    """
    prefix = "train" if train else "t10k"
    raw = _raw_folder(root)
    images = _idx_body(raw / f"{prefix}-images-idx3-ubyte", 16).view(-1, IMAGE_SIZE, IMAGE_SIZE)
    labels = _idx_body(raw / f"{prefix}-labels-idx1-ubyte", 8)
    # Exactly what ToTensor() does to a uint8 image: to float32, divide by 255.
    return Split(images.to(torch.float32).div(255), labels.to(torch.int64))


def _idx_body(path: Path, header: int) -> torch.Tensor:
    """The bytes of an IDX file after its header, as a uint8 tensor."""
    return torch.frombuffer(bytearray(path.read_bytes()), dtype=torch.uint8, offset=header)


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

