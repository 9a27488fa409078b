"""The shared folder walker's rules (convnet_common/folder_walk.py), which the app, the
CLI and training all depend on: order, links, loops, unreadable folders, depth.

The walker replaced two recursive ones; these pin the behaviour each caller had, so
that moving to one walker changed nothing but the depth limit and the cost.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from deep_folders import make_chain, remove_chain

from convnet_common.folder_walk import UnreadableFolder, walk_files
from convnet_common.imaging import is_image_file


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """b/2.png, a/deep/1.JPG, a/0.png, a/notes.txt, z.webp, a/loop -> root, a/self.png -> itself,
    a/gone.png -> nothing, outside/3.png reached through a/out -> ../outside."""
    root = tmp_path / "root"
    (root / "b").mkdir(parents=True)
    (root / "a" / "deep").mkdir(parents=True)
    for name in ("b/2.png", "a/deep/1.JPG", "a/0.png", "a/notes.txt", "z.webp"):
        (root / name).write_bytes(b"x")
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "3.png").write_bytes(b"x")
    os.symlink(root, root / "a" / "loop")
    os.symlink("self.png", root / "a" / "self.png")
    os.symlink("no-such.png", root / "a" / "gone.png")
    os.symlink(tmp_path / "outside", root / "a" / "out")
    return root


def _walk(root: Path, **options) -> list[str]:
    return [str(item.relative_to(root)) for item in walk_files(root, is_image_file, **options)]


def test_app_order_follows_folder_links_once_and_lists_bad_links(tree: Path) -> None:
    assert _walk(tree, follow_folder_links=True) == [
        "a/0.png",
        "a/deep/1.JPG",
        "a/gone.png",
        "a/out/3.png",
        "a/self.png",
        "b/2.png",
        "z.webp",
    ]


def test_training_order_is_os_walks_and_never_enters_folder_links(tree: Path) -> None:
    assert _walk(tree, follow_folder_links=False, files_first=True) == [
        "z.webp",
        "a/0.png",
        "a/gone.png",
        "a/self.png",
        "a/deep/1.JPG",
        "b/2.png",
    ]


def test_a_folder_named_twice_is_walked_once(tree: Path) -> None:
    visited: set = set()
    first = list(walk_files(tree / "b", is_image_file, follow_folder_links=True, visited=visited))
    again = list(walk_files(tree / "b", is_image_file, follow_folder_links=True, visited=visited))
    assert first == [tree / "b" / "2.png"] and again == []


def test_unlistable_top_folder_is_reported_not_raised(tmp_path: Path) -> None:
    [item] = walk_files(tmp_path / "missing", is_image_file, follow_folder_links=True)
    assert isinstance(item, UnreadableFolder) and "not found" in item.reason


def test_3000_levels_walk_without_recursion_and_report_the_path_max_folder(tmp_path: Path) -> None:
    root = tmp_path / "deep"
    make_chain(root, 3000, {1000: ["found.png"], 3000: ["lost.png"]})
    try:
        items = list(walk_files(root, is_image_file, follow_folder_links=True))
    finally:
        remove_chain(root)
    # Name order at level 1,000: the folder "d" (too deep to list, reported) before found.png.
    assert [isinstance(item, UnreadableFolder) for item in items] == [True, False]
    assert "longer than the system allows" in items[0].reason and len(os.fsencode(items[0].path)) >= 4096 - 2
    assert items[1].name == "found.png" and len(items[1].parts) == 1000 + len(root.parts) + 1


def _open_descriptors() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="counts open descriptors through /proc")
def test_few_descriptors_held_and_none_left_open(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Folders are opened relative to their parent; a deep and wide tree must neither run
    out of descriptors (the oldest are closed past MAX_OPEN_FOLDERS) nor leak any."""
    import convnet_common.folder_walk as walk

    root = tmp_path / "wide"
    folder = root
    for level in range(12):  # each level: a sub-folder "a" to go deeper, and a later sibling "b"
        (folder / "b").mkdir(parents=True)
        (folder / "b" / f"{level}.png").write_bytes(b"x")
        folder = folder / "a"
    folder.mkdir()
    (folder / "end.png").write_bytes(b"x")
    expected = _walk(root, follow_folder_links=True)
    before = _open_descriptors()
    monkeypatch.setattr(walk, "MAX_OPEN_FOLDERS", 3)
    assert _walk(root, follow_folder_links=True) == expected and len(expected) == 13
    walker = walk_files(root, is_image_file, follow_folder_links=True)
    next(walker)  # a caller that stops early (detect_labelled_folder does)
    walker.close()
    assert _open_descriptors() == before
