"""The CPU-fallback notice: only where it helps, once, and closable for good.

onnxruntime-gpu always lists the CUDA provider, so on a machine without a GPU every
start used to say "CUDA is not usable". Now it is said only when the user chose CUDA
or an NVIDIA GPU is present but unusable (the probe is patched here either way).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import desktop.core.providers as providers
from desktop import classify_cli
from desktop.core.model import load_model
from desktop.core.notices import Notice, NoticeBoard
from desktop.core.providers import (
    CUDA_PROVIDER,
    FALLBACK_CUDA_CHOSEN,
    FALLBACK_GPU_UNUSABLE,
    NOTICE_CUDA_FALLBACK,
    NOTICE_GPU_UNUSABLE,
)
from desktop.core.settings import Settings

WAIT_MS = 10_000
FALLBACKS = (NOTICE_CUDA_FALLBACK, NOTICE_GPU_UNUSABLE)


@pytest.fixture
def gpu_present(monkeypatch):
    """Set what the GPU probe answers: gpu_present(True) pretends an NVIDIA GPU is installed."""

    def set_present(present: bool) -> None:
        monkeypatch.setattr(providers, "nvidia_gpu_present", lambda: present)

    return set_present


def _skip_if_cuda_works(model) -> None:
    if model.provider_in_use == CUDA_PROVIDER:
        pytest.skip("CUDA is usable here: there is no fallback to report")


@pytest.mark.parametrize(
    ("provider", "gpu", "expected"),
    [
        ("auto", False, None),
        ("auto", True, FALLBACK_GPU_UNUSABLE),
        ("cuda", False, FALLBACK_CUDA_CHOSEN),
        ("cuda", True, FALLBACK_CUDA_CHOSEN),
        ("cpu", True, None),
    ],
)
def test_fallback_notice_only_where_it_helps(
    colour_model: Path, gpu_present, provider: str, gpu: bool, expected: str | None
) -> None:
    gpu_present(gpu)
    model = load_model(colour_model, provider=provider)
    _skip_if_cuda_works(model)
    assert model.cuda_fallback == expected
    shown = [n for n in model.info.notices if n in FALLBACKS]
    assert shown == ([providers.FALLBACK_NOTICES[expected]] if expected else [])


def test_gpu_probe_answers_without_error() -> None:
    assert isinstance(providers.nvidia_gpu_present(), bool)


# the rules, without Qt ------------------------------------------------------------------
def test_board_shows_a_keyed_notice_once_a_session() -> None:
    fallback = Notice("CPU", "gpu-unusable")
    board = NoticeBoard()
    board.set_model_notices([fallback])
    assert board.visible() == [fallback]
    board.set_model_notices([fallback])  # a second model while it is on screen: it stays
    assert board.visible() == [fallback]
    board.set_model_notices([])  # a model on CUDA: gone
    board.set_model_notices([fallback])  # falls back again later: not a second time this session
    assert board.visible() == []


def test_board_dismissal_is_for_good_for_keyed_notices_only() -> None:
    board = NoticeBoard(["settings were corrupt"])
    board.set_model_notices([Notice("no metadata"), Notice("CPU", "cuda-chosen")])
    assert board.dismiss() == ["cuda-chosen"] and board.visible() == []
    board.set_model_notices([Notice("no metadata"), Notice("CPU", "cuda-chosen")])
    assert board.visible() == [Notice("no metadata")]  # about the new model; the CPU one stays closed
    next_session = NoticeBoard([], board.dismissed)
    next_session.set_model_notices([Notice("CPU", "cuda-chosen")])
    assert next_session.visible() == []


# convnet-classify ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("args", "gpu", "expected"),
    [
        ([], False, None),
        ([], True, NOTICE_GPU_UNUSABLE),
        (["--provider", "cuda"], False, NOTICE_CUDA_FALLBACK),
        (["--provider", "cpu"], True, None),
    ],
)
def test_cli_notes_the_fallback_only_where_it_helps(
    colour_model: Path, write_png, capsys, gpu_present, args: list[str], gpu: bool, expected: str | None
) -> None:
    gpu_present(gpu)
    image = write_png("r.png", np.full((16, 16, 3), (220, 10, 10), np.uint8))
    assert classify_cli.main([str(image), "--model", str(colour_model), *args]) == 0
    err = capsys.readouterr().err
    if "provider CUDAExecutionProvider" in err:
        pytest.skip("CUDA is usable here")
    notes = [line for line in err.splitlines() if "note:" in line]
    assert notes == ([f"convnet-classify: note: {expected}"] if expected else [])
    assert "provider CPUExecutionProvider" in err  # the last line still says what ran


def test_hostile_dismissed_notices_fall_back_to_none(isolated_config: Path) -> None:
    (isolated_config / "settings.json").write_text(json.dumps({"dismissed_notices": [1, None], "undo_sort_dest": 5}))
    settings = Settings.load()
    assert settings.get("dismissed_notices") == [] and settings.get("undo_sort_dest") == ""
