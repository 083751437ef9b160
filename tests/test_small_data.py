"""The small-data setting's figure and sentences (quick runs on the real data) and their guard."""

import matplotlib.pyplot as plt
import pytest
from matplotlib.ticker import PercentFormatter

from fmnist_helpers import small_data
from fmnist_helpers.evidence import ContradictedClaim
from fmnist_helpers.settings import settings
from fmnist_helpers.study import small_data_results

MARK = "not borne out by these runs"


@pytest.fixture(scope="module")
def groups(tmp_path_factory):
    """The quick small-data runs (2 seeds, 2 epochs, real images), trained once."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FMNIST_RESULTS_DIR", str(tmp_path_factory.mktemp("results")))
        mp.setenv("FMNIST_PROGRESS", "0")
        return small_data.small_data_groups(small_data_results(settings(quick=True)))


def test_groups_are_none_dropout_l2_and_missing_runs_are_named(groups):
    none, dropout, l2 = groups
    assert (none.experiment.dropout, dropout.experiment.dropout, l2.experiment.l2) == (
        0.0, small_data.SMALL_DATA["small_data_dropout"].dropout,
        small_data.SMALL_DATA["small_data_l2"].l2)
    with pytest.raises(ValueError, match="small_data_l2"):
        small_data.small_data_groups([*none, *dropout])


def test_figure_is_in_percent_with_one_panel_per_model(groups):
    fig = small_data.plot_small_data(groups)
    panels = [ax for ax in fig.axes if ax.get_title()]
    assert [ax.get_title() for ax in panels] == ["no regulariser", "dropout 0.2", "L2 0.003"]
    for ax in panels:
        assert isinstance(ax.yaxis.get_major_formatter(), PercentFormatter)
        assert any("gap" in t.get_text() for t in ax.texts)  # the last epoch's gap, drawn
    plt.close(fig)


def test_gap_opening_is_found_where_the_medians_part():
    from fmnist_helpers.history import History
    from fmnist_helpers.results import Result
    from fmnist_helpers.seeds import Seeds
    from fmnist_helpers.study import SMALL_DATA

    rows = [{"epoch": e, "train_acc": 0.5 + 0.05 * e, "test_acc": 0.5 + 0.01 * e}
            for e in range(1, 6)]
    run = Result(SMALL_DATA["small_data"], 0, True, History(rows), 0, "cpu")
    assert small_data.gap_opens(Seeds([run])) == 2  # gap 0.08 at epoch 2, 0.04 at epoch 1
    assert small_data.last_gaps(Seeds([run])) == pytest.approx([0.2])


def test_sentences_give_numbers_and_mark_what_quick_runs_do_not_bear_out(groups):
    none, dropout, l2 = groups
    text = small_data.small_data_sentences(none, dropout, l2, strict=False)
    assert "bootstrap interval" in text and "t interval over the 2 seeds" in text
    gains = dropout.values().mean() > none.values().mean()
    pays = "Here dropout pays" in text
    assert pays
    assert ("~~Here dropout pays" in text) is (not gains)  # struck through when contradicted
    if not gains:
        assert MARK in text


def test_a_contradicted_claim_stops_in_strict_mode(groups):
    none, dropout, l2 = groups
    # Swapping the unregularised and dropout runs turns dropout's gain into a loss (or both
    # ways a tie): at least one of the two orders must contradict "dropout pays".
    stopped = 0
    for a, b in ((none, dropout), (dropout, none)):
        try:
            small_data.small_data_sentences(a, b, l2, strict=True)
        except ContradictedClaim:
            stopped += 1
    assert stopped >= 1


def test_each_section_says_its_own_regulariser(groups):
    none, dropout, l2 = groups
    on_dropout = small_data.small_data_sentences(none, dropout, l2, strict=False, focus="dropout")
    on_l2 = small_data.small_data_sentences(none, dropout, l2, strict=False, focus="l2")
    assert "dropout pays" in on_dropout and "L2 penalty" not in on_dropout
    assert "L2 penalty" in on_l2 and "dropout pays" not in on_l2
    with pytest.raises(ValueError, match="focus"):
        small_data.small_data_sentences(none, dropout, l2, focus="batch norm")
