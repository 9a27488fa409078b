"""Model → Unknown threshold…: move the unknown-score threshold and see what share of images it keeps.

The slider runs over the validation scores the model file recorded (its `unknown`
metadata: the scores at 0 %, 1 %, … 100 %), and the text under it says what share of
those validation images the position accepts as known, interpolated between the
quantiles (convnet_common/unknown_score.py). That share is the one number a user can
judge a threshold by: "95 % of images like the training ones still get a class".

OK keeps the value for this model file in the app settings, keyed by the file's SHA-256
(so it follows the file when moved, and a retrained file starts from its own threshold);
the model file is never rewritten. "Reset to the model's threshold" forgets it.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QPushButton, QSlider, QVBoxLayout, QWidget

from desktop.core.model import LoadedModel
from desktop.core.settings import Settings
from desktop.qt.plain_text import PlainLabel

SLIDER_STEPS = 1000
RESET = "reset"  # what `chosen` is after "Reset to the model's threshold"


class UnknownThresholdDialog(QDialog):
    """A slider over the model's validation-score range; `chosen` is the value, RESET, or None (cancelled)."""

    def __init__(self, model: LoadedModel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        spec = model.info.unknown
        if spec is None:
            raise ValueError("this model has no unknown score")
        self.spec = spec
        self.chosen: float | str | None = None
        self._exact: float | None = None  # the value set_threshold was given, until the slider moves
        self.setWindowTitle("Unknown threshold")
        low, high = spec.score_range
        self._low, self._span = low, max(high - low, 1e-12)
        intro = PlainLabel(
            f"An image whose unknown score ({spec.method}) is over the threshold is called Unknown "
            f"instead of one of the {len(model.info.labels)} classes. The model's own threshold is "
            f"{spec.threshold:.4g} (it accepts {spec.accept_rate:.0%} of its validation images)."
        )
        intro.setWordWrap(True)
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setRange(0, SLIDER_STEPS)
        self.slider.setMinimumWidth(360)
        self.share_label = PlainLabel()
        self.share_label.setWordWrap(True)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        self.reset_button = QPushButton("Reset to the model's threshold")
        buttons.addButton(self.reset_button, QDialogButtonBox.ButtonRole.ResetRole)
        buttons.accepted.connect(self._accept_value)
        buttons.rejected.connect(self.reject)
        self.reset_button.clicked.connect(self._reset)
        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addWidget(self.slider)
        layout.addWidget(self.share_label)
        layout.addWidget(buttons)
        self.slider.valueChanged.connect(self._show_share)
        self.set_threshold(model.unknown_threshold if model.unknown_threshold is not None else spec.threshold)

    # the value ------------------------------------------------------------------------
    def threshold(self) -> float:
        """The score at the slider's position; the exact value given to set_threshold if not moved since."""
        if self._exact is not None:
            return self._exact
        return self._low + self._span * self.slider.value() / SLIDER_STEPS

    def set_threshold(self, value: float) -> None:
        """Put the slider at `value` (clamped to the validation range for the slider only)."""
        position = round((value - self._low) / self._span * SLIDER_STEPS)
        self.slider.blockSignals(True)
        self.slider.setValue(max(0, min(SLIDER_STEPS, position)))
        self.slider.blockSignals(False)
        self._exact = value
        self._show_share()

    def share_text(self) -> str:
        value = self.threshold()
        share = self.spec.accepted_share(value)
        return (
            f"Threshold {value:.4g}: accepts {share:.1%} of the {self.spec.images:,} validation images; "
            f"the other {1 - share:.1%} would be called Unknown."
        )

    def _show_share(self, *_args: object) -> None:
        if _args:  # moved by the user: the slider's own value from now on
            self._exact = None
        self.share_label.setText(self.share_text())

    # buttons --------------------------------------------------------------------------
    def _accept_value(self) -> None:
        self.chosen = self.threshold()
        self.accept()

    def _reset(self) -> None:
        self.chosen = RESET
        self.accept()


def apply_choice(model: LoadedModel, settings: Settings, chosen: float | str | None) -> float | None | bool:
    """Store the dialog's answer for this model file and save the settings; the override now in
    force (None: the file's own), or False when nothing was chosen (cancelled)."""
    if chosen is None:
        return False
    value = None if chosen == RESET else float(chosen)
    settings.set_unknown_threshold(model.info.sha256, value)
    settings.save()
    return value
