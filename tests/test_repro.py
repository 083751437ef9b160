"""The arithmetic probe's comparison of histories (the training itself runs in `make`-less
manual use: it takes minutes on the full data)."""

import copy
import json

import pytest

from fmnist_helpers import repro


def histories(*test_acc: float) -> dict:
    return {"deeper/0": {"train_loss": [0.5, 0.4], "test_loss": [0.6, 0.5],
                         "test_acc": list(test_acc)}}


def test_largest_difference_is_zero_only_for_identical_histories():
    assert repro.largest_difference(histories(0.7, 0.8), histories(0.7, 0.8)) == 0.0
    assert repro.largest_difference(histories(0.7, 0.8), histories(0.7, 0.6)) == pytest.approx(
        0.2)


def test_compare_prints_identity_per_setting(capsys):
    a = {"cpu": "A", "torch": "2", "settings": {"default": {"histories": histories(0.7, 0.8)}}}
    b = {"cpu": "B", "torch": "2", "settings": {"default": {"histories": histories(0.7, 0.8)}}}
    repro.compare(a, b)
    assert "(bit-identical)" in capsys.readouterr().out
    b["settings"]["default"]["histories"] = histories(0.7, 0.75)
    repro.compare(a, b)
    out = capsys.readouterr().out
    assert "bit-identical" not in out and "0.8000/0.7500" in out


def test_epochs_must_be_positive():
    with pytest.raises(SystemExit):
        repro.main(["--epochs", "0"])


def test_a_small_run_trains_every_probe_on_real_data():
    found = repro.child(epochs=1, small=True)
    assert set(found["histories"]) == {f"{name}/{seed}" for name, seed in repro.RUNS}
    for history in found["histories"].values():
        assert len(history["test_acc"]) == 1 and 0.0 < history["test_acc"][0] <= 1.0
    assert found["capability"] in {"DEFAULT", "AVX2", "AVX512"}


def test_check_reproduces_the_committed_fingerprint_on_this_cpu(capsys):
    """Portable mode gives the fingerprint's bits here (the five runs train in a fresh
    process, about 15 s on the 2-core machine)."""
    assert repro.check() is True
    assert "bit-identical to the committed fingerprint" in capsys.readouterr().out


def test_a_fingerprint_that_differs_names_the_run_and_fails():
    committed = json.loads(repro.FINGERPRINT.read_text())
    now = copy.deepcopy(committed)
    run = next(iter(now["runs"]))
    now["runs"][run]["test_acc"][-1] += 1e-4
    now["runs"][run]["sha256"] = repro.digest(now["runs"][run])
    same, lines = repro.verdict(committed, now)
    assert not same
    assert any(line.strip().startswith(f"{run}: differs, largest difference 0.0001")
               for line in lines)
    assert lines[-1].startswith("NOT bit-identical: 1 of 5 runs differ")
    assert repro.verdict(committed, committed)[0]


def test_the_fingerprint_digests_match_its_histories():
    committed = json.loads(repro.FINGERPRINT.read_text())
    assert committed["kernels"].startswith("portable:")
    for history in committed["runs"].values():
        assert repro.digest(history) == history["sha256"]
