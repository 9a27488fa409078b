"""The chance verdict: flat runs are called out, real learning is not, and luck over a
small validation set or many epochs is not mistaken for learning."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from training import chance


@pytest.mark.parametrize("k, n, p", [(0, 10, 0.3), (4, 10, 0.3), (10, 10, 0.5), (60, 200, 0.25), (7, 30, 0.1)])
def test_binomial_tail_matches_scipy(k, n, p):
    assert chance.binomial_tail(k, n, p) == pytest.approx(stats.binom.sf(k - 1, n, p), rel=1e-9, abs=1e-300)


def test_the_issue_run_is_no_better_than_chance():
    """Three balanced classes, 0.3333 every epoch, loss ln 3: what the reported run printed."""
    labels = [0, 1, 2] * 10
    verdict = chance.assess(labels, [1 / 3] * 8, [math.log(3)] * 8, [1.2, *[math.log(3)] * 7])
    assert verdict.beats_chance is False and verdict.verdict == chance.AT
    assert verdict.chance_accuracy == pytest.approx(1 / 3)
    assert "did no better than chance" in verdict.sentence
    assert f"never went below {math.log(3):.4f} (ln 3)" in verdict.sentence
    causes = chance.likely_causes(verdict, random_weights=True, epochs_run=8, learning_rate=1e-3, smallest_class=40)
    assert any("training loss stayed" in cause for cause in causes)
    assert any("--weights none" in cause for cause in causes)
    lines = verdict.lines()
    assert lines[0].startswith("WARNING: The model did no better than chance")


def test_a_learning_run_beats_chance():
    labels = [0, 1, 2] * 20
    verdict = chance.assess(labels, [0.4, 0.7, 0.9], [1.0, 0.6, 0.3], [1.0, 0.5, 0.2])
    assert verdict.beats_chance is True and verdict.verdict == chance.ABOVE
    assert verdict.needed_accuracy < 0.9
    assert verdict.lines() == [verdict.sentence] and "beats chance" in verdict.sentence


def test_the_largest_class_is_the_bar_with_imbalanced_classes():
    """90% on a 90/10 split is what always answering the big class gets."""
    labels = [0] * 90 + [1] * 10
    verdict = chance.assess(labels, [0.9, 0.9])
    assert verdict.chance_accuracy == pytest.approx(0.9) and verdict.beats_chance is False
    assert chance.assess(labels, [0.99]).beats_chance is True


def test_the_bar_rises_with_the_epochs_the_best_was_picked_from():
    labels = [0, 1] * 20  # 40 images, chance 0.5
    one = chance.assess(labels, [0.70])
    many = chance.assess(labels, [0.5] * 29 + [0.70])
    assert one.beats_chance is True
    assert many.beats_chance is False and many.needed_accuracy > one.needed_accuracy


def test_too_few_validation_images_cannot_tell():
    verdict = chance.assess([0, 1, 0, 1], [0.75])
    assert verdict.beats_chance is None and verdict.verdict == chance.UNDECIDED
    assert verdict.needed_accuracy is None and "too few" in verdict.sentence
    assert verdict.lines()[0].startswith("WARNING: Cannot tell")
    # At or under the largest class's share it is plainly no better than chance, however few.
    assert chance.assess([0, 1, 0, 1], [0.5]).beats_chance is False


def test_guessers_are_rarely_called_learners_and_learners_always_are():
    """Simulated runs: a model that guesses (predictions independent of the labels) over
    several epochs passes the test at most about 5% of the time; one that is right 75%
    of the time on three classes always passes."""
    rng = np.random.default_rng(0)
    labels = np.repeat([0, 1, 2], 20)
    false_alarms = 0
    for _ in range(300):
        epochs = [float(np.mean(rng.integers(0, 3, labels.size) == labels)) for _ in range(6)]
        false_alarms += bool(chance.assess(labels.tolist(), epochs).beats_chance)
    assert false_alarms / 300 <= 0.06
    for _ in range(50):
        epochs = [
            float(np.mean(np.where(rng.random(labels.size) < 0.75, labels, (labels + 1) % 3) == labels))
            for _ in range(6)
        ]
        assert chance.assess(labels.tolist(), epochs).beats_chance is True


def test_assess_run_reads_history_rows_and_fills_in_causes():
    rows = [{"epoch": str(e), "loss": "1.0986", "val_loss": "1.0986", "val_accuracy": "0.3333333"} for e in (1, 2)]
    verdict = chance.assess_run(rows, [0, 1, 2] * 5, random_weights=False, learning_rate=0.01, smallest_class=12)
    assert verdict.beats_chance is False and verdict.epochs == 2
    assert any("too few epochs (2)" in cause for cause in verdict.causes)
    assert not any("--weights none" in cause for cause in verdict.causes)
    assert verdict.to_dict()["causes"] == verdict.causes
