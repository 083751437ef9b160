"""What the networks learned: counting by hand on tiny cases, and the real quick-mode runs."""

import math

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure

from fmnist_helpers import diagnostics, learned, mosaic
from fmnist_helpers.data import CLASSES
from fmnist_helpers.models import build_mlp
from fmnist_helpers.runs import study_results, train_runs
from fmnist_helpers.settings import settings


@pytest.fixture(scope="module")
def runs():
    """Two seeds of the shallow network and one of the wide one, quick mode, not cached."""
    return train_runs([("shallow", 0), ("shallow", 1), ("wide", 0)],
                      settings(quick=True, progress=False), cache=False)


def test_confusion_matrix_and_per_class_accuracy_by_hand():
    labels = torch.tensor([0, 0, 1, 1, 2])
    predictions = np.array([0, 1, 1, 1, 0])
    assert learned.confusion_matrix(labels, predictions, 3).tolist() == [
        [1, 1, 0], [0, 2, 0], [1, 0, 0]]
    assert learned.per_class_accuracy(labels, predictions, 3).tolist() == [0.5, 1.0, 0.0]
    empty = learned.per_class_accuracy(labels, predictions, 4)  # class 3 has no image
    assert empty[:3].tolist() == [0.5, 1.0, 0.0] and math.isnan(empty[3])
    with pytest.raises(ValueError, match="classes 0 to 2, got 3"):
        learned.confusion_matrix(labels, [0, 1, 1, 3, 0], 3)
    with pytest.raises(ValueError, match="differ in length: 5 and 4"):
        learned.confusion_matrix(labels, [0, 1, 1, 1], 3)
    with pytest.raises(ValueError, match="1-D"):
        learned.confusion_matrix(labels.view(5, 1), predictions, 3)


def test_dead_units_on_a_hand_built_network():
    """Units that are zero after the ReLU for every image, per hidden layer, across chunks."""
    model = build_mlp(3, 4)
    with torch.no_grad():
        first, second = model[1], model[3]
        first.weight.zero_()
        first.bias.copy_(torch.tensor([0.0, -0.1, 0.0, 1.0]))  # unit 3 always on
        first.weight[0, 0] = 1.0  # unit 0: on only for an image whose first pixel is lit
        first.weight[1] = -1.0  # unit 1: never on (pixels >= 0, bias < 0)
        # unit 2: exactly zero everywhere
        second.weight.zero_()
        second.bias.copy_(torch.tensor([-1.0, 1.0, 0.0, 2.0]))  # two dead, two alive
    images = torch.zeros(2_500, 28, 28)
    assert diagnostics.count_dead(model, images) == [3, 2]
    images[1_700, 0, 0] = 0.5  # lit in the second chunk of 1,000 only
    assert diagnostics.count_dead(model, images) == [2, 2]
    assert model.training  # the model's mode is left as it was


def test_mistakes_most_confident_first_and_what_a_second_model_makes_of_them(runs, quick_data):
    shallow, _, wide = runs
    every = learned.mistakes(shallow, quick_data, top=10_000)
    wrong = int((shallow.predictions != quick_data.test.labels).sum())
    assert len(every) == wrong > 16
    assert every["confidence"].is_monotonic_decreasing
    assert (every["true"] != every["predicted"]).all()
    assert every["confidence"].between(0.1, 1).all()  # argmax of 10 classes: at least 1/10
    labels = quick_data.test.labels[torch.tensor(every["image"].to_numpy())]
    assert [CLASSES[c] for c in labels] == every["true"].tolist()
    top = learned.mistakes(shallow, quick_data, against=wide)
    assert top.drop(columns=["other predicted", "other right"]).equals(every.iloc[:16])
    rows = torch.tensor(top["image"].to_numpy())
    assert top["other right"].tolist() == (wide.predictions[rows] ==
                                           quick_data.test.labels[rows]).tolist()
    with pytest.raises(ValueError, match="top must be"):
        learned.mistakes(shallow, quick_data, top=0)


def test_per_class_table_over_seeds_on_real_quick_runs():
    results = study_results(["shallow"], seeds=[0, 1], config=settings(quick=True))
    mean = learned.per_class_table(results)
    assert mean.shape == (1, 10) and list(mean.columns) == list(CLASSES)
    assert mean.index.tolist() == ["shallow"]
    # balanced classes (50 test images each): the mean over classes is the test accuracy
    overall = np.mean([r.final["test_acc"] for r in results])
    assert mean.loc["shallow"].mean() == pytest.approx(overall)
    low, high = (learned.per_class_table(results, s) for s in ("min", "max"))
    assert (low <= mean).all(axis=None) and (mean <= high).all(axis=None)
    sd = learned.per_class_table(results, "sd")
    assert sd.loc["shallow"].tolist() == pytest.approx(
        [abs(a - b) / math.sqrt(2) for a, b in zip(low.loc["shallow"], high.loc["shallow"],
                                                   strict=True)])
    with pytest.raises(ValueError, match="statistic must be one of mean, sd, min, max"):
        learned.per_class_table(results, "median")


def test_confusions_and_where_models_differ(runs):
    by_model = {"shallow": runs[:2], "wide": runs[2:]}
    pairs = learned.most_confused_pairs(by_model, top=5)
    assert len(pairs) >= 5 and pairs["group"].is_monotonic_increasing
    mean = (learned.confusion_of(runs[:2]) + learned.confusion_of(runs[2:])) / 2
    first = pairs.iloc[0]
    true, predicted = CLASSES.index(first["true"]), CLASSES.index(first["predicted"])
    assert first["images"] == pytest.approx(mean[true, predicted])
    assert first["images"] == mean[~np.eye(10, dtype=bool)].max()
    assert first["share"] == pytest.approx(first["images"] / 50)
    assert first["fewest"] <= first["images"] <= first["most"]
    # the wide network has one seed: only the shallow network's two seeds give noise
    differ = learned.classes_where_models_differ(runs, top=1)
    table = learned.per_class_table(runs)
    spread = table.max(axis=0) - table.min(axis=0)
    for name, row in differ.iterrows():
        assert row["spread"] == pytest.approx(spread[name])
        assert row["best"] == table[name].max() and row["worst"] == table[name].min()
    with pytest.raises(ValueError, match="one model"):
        learned.confusion_of(runs)


def test_describe_classes_names_what_it_computed(runs):
    one = learned.describe_classes(runs[:1])
    assert one.startswith("For the shallow network (seed 0), in % of each class's test images")
    hardest = learned.per_class_table(runs[:1]).mean(axis=0).idxmin()  # first of any tie
    assert f"least often is *{hardest}*" in one and "not tested against" in one
    several = learned.describe_classes(runs)
    assert several.startswith("Over the 2 models")
    assert "The models differ most on" in several or "No class separates" in several
    pair = learned.most_confused_pairs(runs, top=1).iloc[0]
    assert f"*{pair['true']}* taken for *{pair['predicted']}*" in several


def test_first_layer_dead_units_and_figures(runs, quick_data):
    shallow, _, wide = runs
    images = learned.first_layer_images(wide)
    assert images.shape == (50, 28, 28)
    assert torch.equal(images.flatten(1), wide.state_dict()["1.weight"])
    dead = diagnostics.dead_units(shallow, quick_data)
    assert len(dead) == 2 and all(0 <= n <= 10 for n in dead)
    table = diagnostics.dead_units_table(runs).frame
    assert table.columns.tolist() == ["model", "seed", "dead units, layer 1 to last",
                                      "dead of all", "test %"]
    assert table["dead units, layer 1 to last"].iloc[0] == ", ".join(map(str, dead))
    pairs = learned.confused_pairs_table(runs, top=3).frame
    assert pairs.shape[1] <= 8 and len(pairs) >= 3
    module = learned.first_layer_images(wide.model())
    assert torch.equal(module, images)  # a trained model works as well as a cached run
    figures = [learned.plot_per_class_heatmap(learned.per_class_table(runs)),
               learned.plot_class_accuracy(runs),
               learned.plot_confusion(learned.confusion_of(runs[:2]), "Shallow network"),
               learned.plot_mistakes(shallow, quick_data, top=8, against=wide),
               learned.plot_first_layer(wide, quick_data)]
    for fig in figures:
        assert isinstance(fig, Figure)
        assert any(t.get_position()[1] == 0.0 and t.get_text() for t in fig.texts)  # caption
    check_first_layer_figure(figures[4], images, quick_data)
    with pytest.raises(ValueError, match="quick=True"):
        diagnostics.dead_units(shallow, type(quick_data)(quick_data.train, quick_data.test.take(
            torch.arange(10)), quick_data.source))
    import matplotlib.pyplot as plt

    for fig in figures:
        plt.close(fig)


def check_first_layer_figure(fig: Figure, units: torch.Tensor, data) -> None:
    """One image per mosaic: the class means in grey, then the units on one symmetric diverging
    scale (the largest weight at its end), a label per tile, one colorbar."""
    classes, shown = (ax for ax in fig.axes if ax.images)
    assert len(classes.images) == len(shown.images) == 1
    means, weights = classes.images[0], shown.images[0]
    assert means.get_cmap().name == "gray_r" and (means.norm.vmin, means.norm.vmax) == (0, 1)
    assert weights.get_cmap().name == "RdBu_r"
    assert weights.norm.vmin == -weights.norm.vmax == -float(units.abs().max())
    shoes = data.test.images[data.test.labels == 9].mean(0)  # the tenth tile
    tiled = means.get_array()
    columns = (tiled.shape[1] + mosaic.TILE_GAP) // (28 + mosaic.TILE_GAP)
    top = (9 // columns) * (28 + mosaic.LABEL_BAND) + mosaic.LABEL_BAND
    left = (9 % columns) * (28 + mosaic.TILE_GAP)
    tile = tiled[top:top + 28, left:left + 28]
    assert np.allclose(tile, shoes.numpy(), atol=1e-6)
    assert [t.get_text() for t in classes.texts] == list(CLASSES)
    assert [t.get_text() for t in shown.texts] == [f"unit {k + 1}" for k in range(len(units))]
    bars = [ax for ax in fig.axes if getattr(ax, "_colorbar", None) is not None]
    assert len(bars) == 1 and weights.colorbar.ax is bars[0]


def test_a_mosaic_tiles_row_by_row_with_white_gaps():
    images = np.arange(3 * 2 * 2, dtype=float).reshape(3, 2, 2)
    tiled = mosaic.mosaic(images, columns=2)
    band, gap = mosaic.LABEL_BAND, mosaic.TILE_GAP
    assert tiled.shape == (2 * (2 + band), 2 * 2 + gap)
    assert np.isnan(tiled[:band]).all() and np.isnan(tiled[:, 2]).all()  # band, gap: white
    assert tiled[band:band + 2, :2].tolist() == images[0].tolist()
    assert tiled[band:band + 2, 3:].tolist() == images[1].tolist()
    assert tiled[-2:, :2].tolist() == images[2].tolist()
    assert np.isnan(tiled[-2:, 3:]).all()  # the empty slot
    with pytest.raises(ValueError, match="columns must be a whole number >= 1, got 0"):
        mosaic.mosaic(images, 0)
    with pytest.raises(ValueError, match=r"\(n, height, width\)"):
        mosaic.mosaic(images[0], 2)


def test_first_layer_of_a_model_in_a_few_columns(runs, quick_data):
    """The playground's call (a model, not a cached run): every class and unit still shown."""
    import matplotlib.pyplot as plt

    model = runs[0].model()
    fig = learned.plot_first_layer(model, quick_data, columns=4, title="Run 1")
    check_first_layer_figure(fig, learned.first_layer_images(model), quick_data)
    assert fig.axes[0].images[0].get_array().shape[1] == 4 * 29 - 1
    assert fig.get_suptitle().startswith("Run 1: ")
    plt.close(fig)
    with pytest.raises(ValueError, match="pass data="):
        learned.plot_first_layer(model)
    with pytest.raises(ValueError, match="got 2.5"):
        learned.plot_first_layer(model, quick_data, columns=2.5)


def test_the_example_seed_and_the_confusion_leave_a_collapsed_seed_out(runs):
    """A seed at chance level is not the one shown as the model's example, and the confusion
    matrix's title counts the seeds it averages."""
    import copy

    shallow = [r for r in runs if r.experiment.name == "shallow"]
    collapsed = copy.deepcopy(shallow[0])
    collapsed.history.rows[-1]["test_acc"] = 0.1  # chance level
    assert learned.first_kept(shallow) is shallow[0]
    assert learned.first_kept([collapsed, shallow[1]]) is shallow[1]
    title = learned.plot_model_confusion([collapsed, shallow[1]]).axes[0].get_title()
    assert title.endswith("mean over 1 seed, 1 collapsed left out"), title
    assert learned.plot_model_confusion(shallow).axes[0].get_title().endswith("over 2 seeds")


def test_confusion_masks_the_diagonal_and_scales_to_the_mistakes():
    """The diagonal (right answers) is left uncoloured, so the colour scale spans the mistakes;
    the title names the model by its short name."""
    import numpy as np

    matrix = np.full((10, 10), 2.0) + np.diag(np.full(10, 80.0))
    matrix[3, 6] = 20.0  # one frequent mistake
    ax = learned.plot_confusion(matrix, "shallow: confusion matrix").axes[0]
    colours = ax.collections[0].get_array()
    assert np.ma.getmaskarray(colours).reshape(10, 10).diagonal().all()
    assert ax.collections[0].norm.vmax == pytest.approx(20.0 / (82.0 + 8 * 2.0 + 20.0))


def test_mistake_titles_sit_above_their_images(runs, quick_data):
    """The figure is laid out so that no image's title overlaps the image above it."""
    shallow, _, wide = runs
    fig = learned.plot_mistakes(shallow, quick_data, top=16, against=wide)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    shown = [ax for ax in fig.axes if ax.images]
    for upper, lower in zip(shown[:8], shown[8:], strict=False):
        title = lower.title.get_window_extent(renderer)
        assert title.y1 <= upper.get_window_extent(renderer).y0 + 1
