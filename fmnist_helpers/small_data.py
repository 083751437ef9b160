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


def small_data_sentences(none: Seeds, dropout: Seeds, l2: Seeds, strict: bool | None = None,
                         focus: str = "both") -> str:
    """What the small-data runs show: the gap without and with a regulariser, its effect on
    test accuracy and test loss, guarded claims (``strict`` as in
    :func:`~fmnist_helpers.evidence.claim`). ``focus``: ``"dropout"`` (section 3), ``"l2"``
    (section 6) or ``"both"``: each section says its own regulariser's part."""
    if focus not in ("dropout", "l2", "both"):
        raise ValueError(f"focus must be 'dropout', 'l2' or 'both', got {focus!r}")
    epochs = len(none.runs[0].history)
    parts = [f"Without a regulariser, after {epochs} epochs the network scores "
             f"{pct_sd(none.summary(test_acc))} on the test set (mean ± sd) and trains "
             f"{gap_text(none)} above it."]
    if focus in ("dropout", "both"):
        parts += _dropout_part(none, dropout, strict)
    if focus in ("l2", "both"):
        parts += _l2_part(none, l2, strict)
    return " ".join(parts)


def _effects(none: Seeds, other: Seeds) -> tuple:
    """``other`` against ``none``: on test accuracy, on test loss, and the sentence of both."""
    on_acc, on_loss = compare(other, none), compare(other, none, measure=test_loss)
    text = (f"On test accuracy, against none: {effect(on_acc)}. On test loss (cross-entropy): "
            f"{effect(on_loss, scale=1, digits=3, unit='nats')}.")
    return on_acc, on_loss, text


def _narrows(none: Seeds, other: Seeds, what: str, strict: bool | None) -> str:
    return (f"With {what} the gap is {gap_text(other)}. "
            + claim(f"{what[0].upper() + what[1:]} narrows the gap between training and test "
                    "accuracy.",
                    holds=bool(last_gaps(other).mean() < last_gaps(none).mean()),
                    why=f"{what}'s mean last-epoch gap below the unregularised one",
                    strict=strict))


def _dropout_part(none: Seeds, dropout: Seeds, strict: bool | None) -> list[str]:
    on_acc, _, text = _effects(none, dropout)
    apart = ("the seeds tell the two apart (interval and rank test)" if separated(on_acc) else
             f"the bootstrap interval excludes zero, but with {len(none)} seeds a side the rank "
             "test does not yet tell the two apart, so read it as a likely gain, not a proven "
             "one" if on_acc.interval_excludes_zero else "the interval still holds zero")
    return [_narrows(none, dropout, f"dropout {dropout.experiment.dropout:g}", strict), text,
            claim("Here dropout pays: it raises the mean test accuracy, by trading some of the "
                  "training fit for a better fit of images the network has never seen.",
                  holds=bool(on_acc.difference > 0),
                  why="dropout's mean test accuracy above the unregularised one", strict=strict)
            + f" On the seeds: {apart}."]


def _l2_part(none: Seeds, l2: Seeds, strict: bool | None) -> list[str]:
    on_acc, _, text = _effects(none, l2)
    train_drop = float(np.mean([r.history["train_acc"][-1] for r in none])
                       - np.mean([r.history["train_acc"][-1] for r in l2]))
    return [_narrows(none, l2, f"L2 {l2.experiment.l2:g}", strict), text,
            claim("The L2 penalty does not pay on accuracy at this strength: it narrows the gap "
                  "mostly by lowering the training accuracy.",
                  holds=bool(on_acc.difference <= 0 and train_drop > abs(on_acc.difference)),
                  why="L2's mean test accuracy not above the unregularised one, and its "
                      "training accuracy lower by more than its test accuracy moved",
                  strict=strict)]
