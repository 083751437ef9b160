"""When a regulariser helps: 1,000 training images, a wide network, trained long enough to overfit.

The study's networks train 10 epochs on 60,000 images with 10 hidden units: too little freedom
to memorise, so dropout and the penalties have little to close. The small-data setting
(:data:`fmnist_helpers.study.SMALL_DATA`) gives the network that freedom. This module draws its
curves (:func:`plot_small_data`) and writes its sentences (:func:`small_data_sentences`), every
number computed from the runs; the hand-written claims are guarded by
:func:`fmnist_helpers.evidence.claim`.
"""

from __future__ import annotations

from collections.abc import Iterable

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from scipy import stats

from .evidence import claim
from .plots import _mark_gap, _spread, percent_axis
from .results import Result
from .seeds import Seeds, compare, effect, group, pct_sd, separated, test_acc
from .study import SMALL_DATA
from .style import TEST_STYLE, TRAIN_STYLE, caption, styled

NAMES = tuple(SMALL_DATA)  # none, dropout, L2: the order of the figure and the sentences


def small_data_groups(results: Iterable[Result]) -> tuple[Seeds, Seeds, Seeds]:
    """The small-data runs as (no regulariser, dropout, L2), one :class:`Seeds` each."""
    groups = group(results)
    missing = [n for n in NAMES if n not in groups]
    if missing:
        raise ValueError(f"the small-data runs lack {', '.join(missing)}: pass "
                         "study.small_data_results(config), which trains all three")
    none, dropout, l2 = (groups[n] for n in NAMES)
    return none, dropout, l2


def last_gaps(s: Seeds) -> np.ndarray:
    """Per seed: training minus test accuracy at the last epoch (fractions)."""
    return np.array([r.history["train_acc"][-1] - r.history["test_acc"][-1] for r in s])


def gap_text(s: Seeds) -> str:
    """The last-epoch gap as "10.4 points (95% t interval over the 5 seeds 8.9 to 11.9)"."""
    g = 100 * last_gaps(s)
    if len(g) < 2:
        return f"{g.mean():.1f} points (one seed: no interval)"
    half = stats.t.ppf(0.975, len(g) - 1) * g.std(ddof=1) / np.sqrt(len(g))
    return (f"{g.mean():.1f} points (95% t interval over the {len(g)} seeds "
            f"{g.mean() - half:.1f} to {g.mean() + half:.1f})")


def test_loss(r: Result) -> float:
    """Test cross-entropy at the last epoch."""
    return float(r.history["test_loss"][-1])


OPENING = 0.05  # the gap "opens" where the medians' train-test gap first passes 5 points


def gap_opens(s: Seeds) -> int | None:
    """The first epoch where the median training accuracy passes the median test accuracy by
    :data:`OPENING`; None when it never does."""
    epochs, train = s.curve("train_acc")
    _, test = s.curve("test_acc")
    wide = np.flatnonzero(train - test > OPENING)
    return int(epochs[wide[0]]) if len(wide) else None


def _mark_opening(ax, s: Seeds) -> None:
    """A dotted vertical line where the gap opens, labelled."""
    epoch = gap_opens(s)
    if epoch is not None:
        ax.axvline(epoch, color="#333333", linestyle=":", linewidth=0.9)
        ax.annotate(f"gap passes {100 * OPENING:.0f} pts\n(epoch {epoch})", (epoch, 0.3),
                    xytext=(4, 0), textcoords="offset points", fontsize=8, color="#333333")


@styled
def plot_small_data(models: Iterable[Seeds]) -> Figure:
    """Train and test accuracy over the epochs, one panel per model: the median over the seeds
    and the band from the lowest to the highest seed; the last epoch's gap drawn on."""
    models = list(models)
    fig, axes = plt.subplots(1, len(models), figsize=(4 * len(models), 3.4), sharey=True,
                             squeeze=False, constrained_layout=True)
    for ax, s in zip(axes[0], models, strict=True):
        for metric, line, label in (("train_acc", TRAIN_STYLE, "train"),
                                    ("test_acc", TEST_STYLE, "test")):
            epochs, low, high = _spread(s, metric)
            ax.fill_between(epochs, low, high, color=line["color"], alpha=0.2, linewidth=0)
            ax.plot(*s.curve(metric), label=f"{label} (median)", **line)
        _mark_gap(ax, s)
        _mark_opening(ax, s)
        ax.set_title(s.experiment.title.replace("Wide network, 1,000 training images", "")
                     .strip(", ") or "no regulariser")
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        percent_axis(ax.yaxis)
        ax.legend(loc="lower right")
    axes[0][0].set_ylabel("accuracy")
    n = sorted({len(s) for s in models})
    return caption(fig, f"1,000 training images, {models[0].experiment.hidden} hidden units. "
                        f"Bands: lowest to highest of the {'/'.join(map(str, n))} seeds; "
                        "lines: their median. The arrow measures the gap at the last epoch.")


def small_data_sentences(none: Seeds, dropout: Seeds, l2: Seeds,
                         strict: bool | None = None) -> str:
    """What the small-data runs show: the gap without and with each regulariser, each
    regulariser's effect on test accuracy and test loss, guarded claims (``strict`` as in
    :func:`~fmnist_helpers.evidence.claim`: default, stop on a contradiction in full mode)."""
    on_acc = {s.name: compare(s, none) for s in (dropout, l2)}
    on_loss = {s.name: compare(s, none, measure=test_loss) for s in (dropout, l2)}
    gap = {s.name: float(last_gaps(s).mean()) for s in (none, dropout, l2)}
    epochs = len(none.runs[0].history)
    drop_c, l2_c = on_acc[dropout.name], on_acc[l2.name]
    train_drop = float(np.mean([r.history["train_acc"][-1] for r in none])
                       - np.mean([r.history["train_acc"][-1] for r in l2]))
    apart = ("the seeds tell the two apart (interval and rank test)" if separated(drop_c) else
             f"the bootstrap interval excludes zero, but with {len(none)} seeds a side the rank "
             "test does not yet tell the two apart, so read it "
             "as a likely gain, not a proven one" if drop_c.interval_excludes_zero else
             "the interval still holds zero")
    parts = [
        f"Without a regulariser, after {epochs} epochs the network scores "
        f"{pct_sd(none.summary(test_acc))} on the test set (mean ± sd) and trains "
        f"{gap_text(none)} above it.",
        f"With dropout {dropout.experiment.dropout:g} the gap is {gap_text(dropout)}; with L2 "
        f"{l2.experiment.l2:g}, {gap_text(l2)}.",
        claim("Both regularisers narrow the gap between training and test accuracy.",
              holds=bool(gap[dropout.name] < gap[none.name] and gap[l2.name] < gap[none.name]),
              why="each regulariser's mean last-epoch gap below the unregularised one",
              strict=strict),
        f"On test accuracy, dropout against none: {effect(drop_c)}; L2 against none: "
        f"{effect(l2_c)}. On test loss (cross-entropy), dropout: "
        f"{effect(on_loss[dropout.name], scale=1, digits=3, unit='nats')}; L2: "
        f"{effect(on_loss[l2.name], scale=1, digits=3, unit='nats')}.",
        claim("Here dropout pays: it raises the mean test accuracy, by trading some of the "
              "training fit for a better fit of images the network has never seen.",
              holds=bool(drop_c.difference > 0),
              why="dropout's mean test accuracy above the unregularised one", strict=strict)
        + f" On the seeds: {apart}.",
        claim("The L2 penalty does not pay on accuracy at this strength: it narrows the gap "
              "mostly by lowering the training accuracy.",
              holds=bool(l2_c.difference <= 0 and train_drop > abs(l2_c.difference)),
              why="L2's mean test accuracy not above the unregularised one, and its training "
                  "accuracy lower by more than its test accuracy moved",
              strict=strict),
    ]
    return " ".join(parts)
