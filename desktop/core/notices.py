"""Which one-line notices the window's banner shows, and which the user has closed.

Kept apart from Qt so the rules are tested on their own. A notice about the model
(no metadata, no activation maps) belongs to that model: closing it hides it until the
next model. The CPU-fallback notice is about the machine, so it would repeat on every
start and every load: it has a key, shows at most once a session, and once closed it
stays closed (the window stores the keys in the settings file).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from desktop.core.model import LoadedModel
from desktop.core.providers import FALLBACK_NOTICES


@dataclass(frozen=True)
class Notice:
    text: str
    key: str | None = None  # set for notices that stay closed across starts


def model_notices(model: LoadedModel) -> list[Notice]:
    """The model's notices, the CPU-fallback one carrying its key."""
    fallback_text = FALLBACK_NOTICES.get(model.cuda_fallback or "")
    return [Notice(text, model.cuda_fallback if text == fallback_text else None) for text in model.info.notices]


class NoticeBoard:
    """The banner's content: app notices (e.g. a corrupt settings file) plus the current model's."""

    def __init__(self, app_notices: Iterable[str] = (), dismissed: Iterable[str] = ()) -> None:
        self.dismissed: set[str] = set(dismissed)
        self._app = [Notice(text) for text in app_notices]
        self._model: list[Notice] = []
        self._shown_keys: set[str] = set()  # keyed notices that have been on screen this session

    def set_model_notices(self, notices: Iterable[Notice]) -> None:
        """A new model: its notices replace the last model's (including ones closed for it)."""
        on_screen = {n.key for n in self.visible() if n.key}
        self._model = [
            n
            for n in notices
            if n.key is None or (n.key not in self.dismissed and (n.key not in self._shown_keys or n.key in on_screen))
        ]
        self._shown_keys.update(n.key for n in self._model if n.key)

    def visible(self) -> list[Notice]:
        return self._app + self._model

    def dismiss(self) -> list[str]:
        """The user closed the banner: hide everything; return the keys to remember for good."""
        keys = [n.key for n in self.visible() if n.key]
        self.dismissed.update(keys)
        self._app, self._model = [], []
        return keys
