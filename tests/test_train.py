import math

import pytest
import torch

from fmnist_helpers.data import FashionMNIST
from fmnist_helpers.models import build_mlp
from fmnist_helpers.train import EarlyStopping, TrainingDiverged, evaluate, pick_device, train


def _stop_epoch(values, **kwargs):
    stopper = EarlyStopping(**kwargs)
    for epoch, value in enumerate(values, 1):
        if stopper.step(value, epoch):
            return epoch, stopper.best_epoch
    return None, stopper.best_epoch


def test_early_stopping_on_scripted_histories():
    # improves by >= 0.01 for three epochs, then three epochs of too-small gains
    assert _stop_epoch([1.0, 0.9, 0.8, 0.795, 0.792, 0.7905, 0.5]) == (6, 3)
    # a fall of exactly 0.01 counts ("at least 0.01"), despite float rounding
    assert _stop_epoch([0.8, 0.79, 0.78, 0.775, 0.775, 0.775]) == (6, 3)
    # a real improvement resets the count
    assert _stop_epoch([1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.5]) == (7, 4)
    # never stops while it keeps improving
    assert _stop_epoch([1.0 - 0.1 * k for k in range(8)]) == (None, 8)
    assert _stop_epoch([1.0, 2.0, 3.0], patience=1) == (2, 1)
    with pytest.raises(ValueError):
        EarlyStopping(patience=0)


def test_history_has_every_column_and_sane_values(quick_data):
    torch.manual_seed(0)
    h = train(build_mlp(), quick_data, epochs=2, seed=0, progress=False)
    assert h["epoch"] == [1, 2] and not h.stopped_early
    for row in h.rows:
        for key in ("train_loss", "train_acc", "train_acc_running", "test_loss", "test_acc",
                    "test_acc_study", "seconds"):
            assert math.isfinite(row[key])
        assert 0 <= row["test_acc"] <= 1
        # exact accuracy is a multiple of 1/500 on the 500-image quick test set
        assert round(row["test_acc"] * 500, 6).is_integer()
    assert h.last["test_acc"] > 0.5  # it learned something on real data


def test_same_seed_same_history_bit_for_bit(quick_data):
    def run(seed):
        torch.manual_seed(seed)
        model = build_mlp(3, 10, batch_norm=True, dropout=0.2)
        h = train(model, quick_data, epochs=2, seed=seed, progress=False)
        return [{k: v for k, v in r.items() if k != "seconds"} for r in h.rows]

    assert run(3) == run(3)
    assert run(3) != run(4)


def test_divergence_stops_with_a_clear_message(quick_data):
    torch.manual_seed(0)
    with pytest.raises(TrainingDiverged, match="Lower the learning rate"):
        train(build_mlp(8, 10), quick_data, epochs=3, lr=1e6, progress=False)


def test_early_stopping_ends_training(quick_data):
    torch.manual_seed(0)
    stopper = EarlyStopping(patience=1, min_delta=10.0)  # nothing ever improves enough
    h = train(build_mlp(), quick_data, epochs=5, early_stopping=stopper, progress=False)
    assert len(h) == 2 and h.stopped_early and h.best_epoch == 1


def test_should_stop_ends_between_batches_and_keeps_weights(quick_data):
    torch.manual_seed(0)
    model = build_mlp()
    before = model[1].weight.detach().clone()
    calls = []
    h = train(model, quick_data, epochs=3, progress=False,
              should_stop=lambda: len(calls) >= 5, on_batch=lambda s, n: calls.append(s))
    assert h.interrupted and len(h) == 0 and len(calls) == 5
    assert not torch.equal(before, model[1].weight.cpu())  # five steps of learning kept


def test_validation_split_needed_for_val_monitor(quick_data):
    with pytest.raises(ValueError, match="needs a validation split"):
        train(build_mlp(), quick_data, early_stopping=EarlyStopping(monitor="val_loss"))


@pytest.mark.parametrize("kwargs", [{"epochs": 0}, {"lr": 0}, {"batch_size": 0}])
def test_bad_arguments(quick_data, kwargs):
    with pytest.raises(ValueError):
        train(build_mlp(), quick_data, progress=False, **kwargs)


def test_evaluate_study_accuracy_is_mean_of_batches_of_32(quick_data):
    torch.manual_seed(0)
    model = build_mlp()
    m = evaluate(model, quick_data.test)
    with torch.no_grad():
        hits = (model(quick_data.test.images).argmax(1) == quick_data.test.labels).double()
    per_batch = [hits[i:i + 32].mean().item() for i in range(0, 500, 32)]
    assert m["acc"] == hits.mean().item()
    assert m["acc_study"] == pytest.approx(sum(per_batch) / len(per_batch))


def test_device_choice(monkeypatch):
    monkeypatch.setenv("FMNIST_DEVICE", "cpu")
    assert pick_device().type == "cpu"
    monkeypatch.delenv("FMNIST_DEVICE")
    expected = "cuda" if torch.cuda.is_available() else None
    if expected:
        assert pick_device().type == "cuda"


def test_progress_bar_can_be_switched_on(quick_data, capsys):
    torch.manual_seed(0)
    small = FashionMNIST(quick_data.train.take(torch.arange(64)), quick_data.test, "x")
    train(build_mlp(), small, epochs=1, progress=True, desc="demo-run")
    assert "demo-run" in capsys.readouterr().err
