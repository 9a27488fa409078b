"""Did a training run beat chance? A verdict that a run's numbers alone cannot give.

"best validation accuracy 0.3333" reads like any other result, yet on three balanced
classes it is exactly what a network that ignores its input gets. A run is judged
against the best it could do by guessing: always answering the largest validation
class (its share, `chance_accuracy`, is what a constant model scores; random guessing
scores less). With n validation images such a guesser gets right a Binomial(n,
chance_accuracy) number of them, so the best epoch's accuracy only counts as beating
chance when guessing would reach it with probability at most 5%, Bonferroni-corrected
for the epochs the best was picked from. A validation set can be too small for any
accuracy to pass that test; the verdict then says it cannot tell rather than guess.

The loss gives a second, independent sign: the cross-entropy of predicting the class
shares (ln C for C balanced classes) is what a network whose output does not depend on
the image scores, so a validation loss that never goes below it means nothing was
learned that carries over to new images.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

SIGNIFICANCE = 0.05
# Losses within this share of the chance loss count as "at" it (float noise, a flat line).
LOSS_TOLERANCE = 0.02

ABOVE = "above chance"
AT = "no better than chance"
UNDECIDED = "too few validation images to tell"


@dataclass
class ChanceVerdict:
    verdict: str  # ABOVE, AT or UNDECIDED
    beats_chance: bool | None  # None: the validation set is too small to tell
    best_val_accuracy: float
    chance_accuracy: float  # share of the largest validation class
    needed_accuracy: float | None  # the least accuracy that beats chance; None if none can
    p_value: float  # how often guessing reaches the best accuracy, corrected for the epochs
    val_images: int
    epochs: int
    chance_loss: float  # cross-entropy of predicting the validation class shares
    best_val_loss: float | None
    final_train_loss: float | None
    sentence: str = ""
    causes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)

    def lines(self) -> list[str]:
        """What the CLI prints: the sentence, then a WARNING with the likely causes."""
        if self.beats_chance:
            return [self.sentence]
        lines = [f"WARNING: {self.sentence}"]
        if self.causes:
            lines.append("WARNING: likely causes: " + "; ".join(self.causes) + ".")
        return lines


def binomial_tail(successes: int, trials: int, p: float) -> float:
    """P(X >= successes) for X ~ Binomial(trials, p), summed in log space (no overflow)."""
    if successes <= 0:
        return 1.0
    if successes > trials:
        return 0.0
    if p <= 0.0:
        return 0.0
    if p >= 1.0:
        return 1.0
    log_p, log_q = math.log(p), math.log1p(-p)
    terms = [
        math.lgamma(trials + 1) - math.lgamma(k + 1) - math.lgamma(trials - k + 1) + k * log_p + (trials - k) * log_q
        for k in range(successes, trials + 1)
    ]
    top = max(terms)
    return min(1.0, math.exp(top) * sum(math.exp(t - top) for t in terms))


def _least_significant(n: int, p: float, alpha: float) -> int | None:
    """The least number correct that guessing reaches with probability <= alpha (the tail
    shrinks as the count grows, so a binary search finds it), or None if not even n does."""
    low, high = math.floor(p * n) + 1, n
    if low > n or binomial_tail(n, n, p) > alpha:
        return None
    while low < high:
        middle = (low + high) // 2
        if binomial_tail(middle, n, p) <= alpha:
            high = middle
        else:
            low = middle + 1
    return low


def _entropy(shares: Sequence[float]) -> float:
    return -sum(s * math.log(s) for s in shares if s > 0)


def _finite(values: Sequence[float | None]) -> list[float]:
    return [v for v in values if v is not None and math.isfinite(v)]


def assess(
    val_labels: Sequence[int],
    val_accuracies: Sequence[float | None],
    val_losses: Sequence[float | None] = (),
    train_losses: Sequence[float | None] = (),
    significance: float = SIGNIFICANCE,
) -> ChanceVerdict:
    """The verdict for a run from its validation labels and per-epoch history."""
    n = len(val_labels)
    counts = Counter(val_labels)
    if n == 0 or not counts:
        raise ValueError("no validation images to judge the run by")
    chance = max(counts.values()) / n
    accuracies = _finite(val_accuracies)
    best = max(accuracies) if accuracies else 0.0
    epochs = max(1, len(accuracies))
    alpha = significance / epochs
    correct = round(best * n)
    p_value = min(1.0, binomial_tail(correct, n, chance) * epochs)
    needed = _least_significant(n, chance, alpha)
    losses, trained = _finite(val_losses), _finite(train_losses)
    verdict = ChanceVerdict(
        verdict=ABOVE,
        beats_chance=True,
        best_val_accuracy=best,
        chance_accuracy=chance,
        needed_accuracy=needed / n if needed is not None else None,
        p_value=p_value,
        val_images=n,
        epochs=len(accuracies),
        chance_loss=_entropy([c / n for c in counts.values()]),
        best_val_loss=min(losses) if losses else None,
        final_train_loss=trained[-1] if trained else None,
    )
    if needed is not None and correct >= needed:
        verdict.sentence = (
            f"The model beats chance: best validation accuracy {best:.4f} on {n} images, against {chance:.4f} "
            f"for always answering the largest class (guessing gets that far with p = {p_value:.1g})."
        )
        return verdict
    verdict.beats_chance = False if needed is not None or correct <= chance * n else None
    verdict.verdict = AT if verdict.beats_chance is False else UNDECIDED
    verdict.sentence = _sentence(verdict, len(counts))
    return verdict


def _sentence(v: ChanceVerdict, classes: int) -> str:
    if v.beats_chance is None:
        return (
            f"Cannot tell whether the model beats chance: {v.val_images} validation images are too few "
            f"(even 100% correct happens by luck more than {SIGNIFICANCE:.0%} of the time); its best "
            f"validation accuracy is {v.best_val_accuracy:.4f}, always answering the largest class gets "
            f"{v.chance_accuracy:.4f}. Use more validation images (--val-fraction or --val-dir)."
        )
    if v.best_val_accuracy <= v.chance_accuracy + 1e-9:
        how = f"is no more than always answering the largest class gets ({v.chance_accuracy:.4f})"
    else:
        how = (
            f"is within what guessing reaches by luck: beating chance takes {v.needed_accuracy:.4f} "
            f"(always answering the largest class gets {v.chance_accuracy:.4f}; best of {v.epochs} epoch(s))"
        )
    text = (
        f"The model did no better than chance: its best validation accuracy, {v.best_val_accuracy:.4f} "
        f"on {v.val_images} images, {how}."
    )
    if v.best_val_loss is not None and v.best_val_loss >= v.chance_loss * (1 - LOSS_TOLERANCE):
        name = f"ln {classes}" if abs(v.chance_loss - math.log(classes)) < 1e-6 else "the entropy of the class shares"
        text += (
            f" The validation loss never went below {v.chance_loss:.4f} ({name}), the loss of a model "
            f"whose answer does not depend on the image."
        )
    return text


def likely_causes(
    verdict: ChanceVerdict,
    *,
    random_weights: bool,
    epochs_run: int,
    learning_rate: float,
    smallest_class: int,
) -> list[str]:
    """Plain reasons to check, most specific first, from what the run knows about itself."""
    causes = []
    flat_training = verdict.final_train_loss is not None and verdict.final_train_loss >= verdict.chance_loss * (
        1 - LOSS_TOLERANCE
    )
    if flat_training:
        causes.append(
            f"the training loss stayed at {verdict.final_train_loss:.4f} too, so the network's answer does not "
            "depend on the image: its features reach the head as constants (a random base with frozen "
            "BatchNorm does this), or the learning rate is far off"
        )
    elif verdict.final_train_loss is not None:
        causes.append(
            f"the training loss fell (to {verdict.final_train_loss:.4f}) but nothing carried over to the "
            "validation images: the network memorised its few training images, or the class folders hold "
            "images that do not show their class"
        )
    if random_weights:
        causes.append(
            "random weights (--weights none) need far more images and epochs than a pretrained base; "
            "use --weights imagenet or a weights file if you can"
        )
    if epochs_run < 10:
        causes.append(f"too few epochs ({epochs_run})")
    causes.append(f"the learning rate ({learning_rate:g}): try ten times lower or higher")
    if smallest_class < 50:
        causes.append(f"too few images (the smallest class has {smallest_class} for training)")
    return causes


def assess_run(
    history: Sequence[dict],
    val_labels: Sequence[int],
    *,
    loss: str = "loss",
    random_weights: bool,
    learning_rate: float,
    smallest_class: int,
) -> ChanceVerdict:
    """`assess` on a run's history.csv rows (text or numbers), with the likely causes filled in.

    `loss` names the main output's loss column (a multi-output run's "loss" includes the
    auxiliary classifiers').
    """

    def column(name: str) -> list[float | None]:
        return [float(row[name]) if row.get(name) not in (None, "") else None for row in history]

    verdict = assess(val_labels, column("val_accuracy"), column(f"val_{loss}"), column(loss))
    if not verdict.beats_chance:
        verdict.causes = likely_causes(
            verdict,
            random_weights=random_weights,
            epochs_run=len(history),
            learning_rate=learning_rate,
            smallest_class=smallest_class,
        )
    return verdict
