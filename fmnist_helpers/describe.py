"""What a notebook states before any run: the mode it runs in, the data, a model's recipe.

Every function returns Markdown, counted from the data, the built model and the settings in
force; nothing is typed by hand. The sentences about runs are in :mod:`fmnist_helpers.discuss`.
"""

from __future__ import annotations

from .data import (
    CLASSES,
    FILES,
    IMAGE_SIZE,
    QUICK_TEST_PER_CLASS,
    QUICK_TRAIN_PER_CLASS,
    FashionMNIST,
)
from .models import count_parameters, linear_layers
from .results import resolve
from .seeds import pct
from .settings import QUICK_EPOCHS, QUICK_MAX_EPOCHS, Settings, settings
from .study import Experiment


def _n(x: float) -> str:
    return f"{x:,.0f}"


def mode_line(config: Settings | None = None) -> str:
    """One line saying whether the notebook runs at the study's settings or in quick mode."""
    if (config or settings()).quick:
        n_train = QUICK_TRAIN_PER_CLASS * len(CLASSES)
        n_test = QUICK_TEST_PER_CLASS * len(CLASSES)
        return (
            f"**Quick mode** (`FMNIST_QUICK=1`): each run trains {QUICK_EPOCHS} epochs (at most "
            f"{QUICK_MAX_EPOCHS} with early stopping) on a stratified subset of {_n(n_train)} "
            f"training and {_n(n_test)} test images. The numbers below only show that the code "
            "runs; they are not comparable with the study's."
        )
    n_train, n_test = FILES["train-labels-idx1-ubyte"][1], FILES["t10k-labels-idx1-ubyte"][1]
    return (
        f"**Full settings**: all {_n(n_train)} training and {_n(n_test)} test images, the "
        "study's number of epochs. Finished runs are loaded from the cache in `results/full/`."
        + _kernels_note()
    )


def _kernels_note() -> str:
    """Which CPU arithmetic trained the runs, when they train on the CPU."""
    if settings().device.type != "cpu":
        return ""
    from . import kernels

    if kernels.requested() == "portable":
        return (f" Trained on the CPU in portable mode ({kernels.in_force()}): any x86-64 CPU "
                "gives these numbers bit for bit (`python -m fmnist_helpers.repro --check` "
                "checks yours; README, \"Reproducibility\").")
    return (f" Trained on the CPU with its own kernels ({kernels.in_force()}): another CPU "
            "may give other digits (README, \"Reproducibility\").")


def describe_data(data: FashionMNIST) -> str:
    """Sizes, image shape, pixel range, classes and class balance of the loaded data."""
    train, test = data.train, data.test
    n_classes = len(data.classes)
    tr, te = train.class_counts(), test.class_counts()
    lo, hi = float(train.images.min()), float(train.images.max())
    text = (
        f"The training set holds **{_n(len(train))}** images and the test set "
        f"**{_n(len(test))}**. Each image is {train.images.shape[1]}×{train.images.shape[2]} "
        f"grey levels scaled to [{lo:.2f}, {hi:.2f}], so a flattened image is a vector of "
        f"{_n(IMAGE_SIZE * IMAGE_SIZE)} numbers. There are {n_classes} classes: "
        f"{', '.join(data.classes)}. "
    )
    if len(set(tr)) == 1 and len(set(te)) == 1:
        text += (
            f"Every class has exactly {_n(tr[0])} training and {_n(te[0])} test images: the "
            "classes are perfectly balanced, so plain accuracy weighs every class alike, and "
            f"guessing a class at random would score about {pct(1 / n_classes)}."
        )
    else:
        text += (
            f"Training images per class range from {_n(min(tr))} to {_n(max(tr))} and test "
            f"images from {_n(min(te))} to {_n(max(te))} (largest over smallest: "
            f"{max(tr) / min(tr):.2f} and {max(te) / min(te):.2f})."
        )
    return text


def describe_model(experiment: Experiment, config: Settings | None = None) -> str:
    """The architecture and training recipe of an experiment, counted from the built model."""
    model = experiment.build()
    widths = [linear_layers(model)[0].in_features]
    widths += [layer.out_features for layer in linear_layers(model)]
    parts = [
        f"{len(widths) - 1} linear layers ({' → '.join(str(w) for w in widths)}), a ReLU "
        "after each hidden one"
    ]
    if experiment.batch_norm:
        parts.append("batch normalisation after each hidden ReLU")
    if experiment.dropout:
        parts.append(f"dropout with p = {experiment.dropout:g} after each hidden activation")
    text = f"{', '.join(parts)}: **{_n(count_parameters(model))}** trainable parameters. "
    text += f"Trained with plain SGD, learning rate {experiment.lr:g}, batches of 32"
    penalties = [f"{w} × {k}" for k, w in (
        ("Σ|W|", experiment.l1), ("ΣW²", experiment.l2), ("ΣW₁² (first layer)",
                                                          experiment.l2_first)) if w]
    if penalties:
        text += f", with {' + '.join(penalties)} added to the loss"
    epochs = resolve(experiment, config or settings()).epochs
    if experiment.early_stopping:
        watched = "test loss" if experiment.early_stopping == "test" else "validation loss"
        against = ("the best so far" if experiment.stop_against == "best"
                   else "the epoch before")
        text += (
            f", for at most {epochs} epochs: training stops once the {watched} has not fallen by "
            f"at least {experiment.min_delta:g} (against {against}) for {experiment.patience} "
            "epochs in a row."
        )
    else:
        text += f", for {epochs} epochs."
    return text
