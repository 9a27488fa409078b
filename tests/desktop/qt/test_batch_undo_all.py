"""The Batch tab's Undo means what `convnet-undo-sort DEST` means: every sort into DEST not
yet undone (a killed sort run again leaves two logs), after a question that says how many
sorts and files."""

from __future__ import annotations

import threading
from pathlib import Path

from desktop.core.batch import BatchResult
from desktop.core.sorting import sort_into_folders
from desktop.qt.batch_view import BatchView
from desktop.qt.controller import InferenceController

WAIT_MS = 10_000


def test_undo_button_undoes_every_sort_into_dest_after_asking(qtbot, tmp_path: Path) -> None:
    sources = [tmp_path / "src" / f"img{i}.png" for i in range(6)]
    sources[0].parent.mkdir()
    for path in sources:
        path.write_bytes(path.name.encode())
    dest = tmp_path / "dest"
    cancel = threading.Event()
    results = [BatchResult(p, "cat", 0.9, (("cat", 0.9),)) for p in sources]
    sort_into_folders(
        results, dest, move=True, cancel=cancel, progress=lambda done, total: cancel.set() if done == 2 else None
    )  # "killed"
    sort_into_folders([r for r in results if r.path.exists()], dest, move=True)  # run again

    controller = InferenceController(provider="cpu")
    view = BatchView(controller, state_dir=tmp_path / "state")
    qtbot.addWidget(view)
    view.messages, asked = [], []
    view.show_message = lambda title, text, error=False: view.messages.append((title, text))
    view.choose_undo_log = lambda: None  # a file dialog would block; "all" must not need it
    view.confirm_undo = lambda folder: (asked.append(view.undo_question(folder)), "all")[1]
    said: list[str] = []
    view.status_message.connect(said.append)
    try:
        assert view.set_undo_dest(dest)
        view.choose_and_undo()
        qtbot.waitUntil(lambda: not view.busy, timeout=WAIT_MS)
        assert len(asked) == 1 and "6 files of 2 sorts" in asked[0]
        assert all(path.read_bytes() == path.name.encode() for path in sources)
        assert not [p for p in dest.rglob("*.png")]
        assert (
            said
            and said[-1].startswith("Moved 6 images back (2 sorts: moved back 6, already at source 0, missing 0")
            and view.messages == []
        )
        assert view.undo_dest is None  # nothing left to undo
    finally:
        view.shutdown()
        controller.shutdown()
