"""Source check: no text in desktop/qt can reach Qt's rich-text engine except escaped.

Qt renders a QLabel's or QMessageBox's text as HTML when it looks like HTML, and always
a tooltip's; a model labelled `<img src='/dev/zero'>` once made the app read /dev/zero
until it had eaten 16-23 GB (tests/desktop/qt/test_rich_text_models.py opens such a
model). desktop/qt/plain_text.py holds the only ways in: `PlainLabel`, `message_box`,
`tooltip`. This test parses every module of desktop/qt and refuses any other: a bare
QLabel (or a QFormLayout row label made from a string), a QMessageBox built or called
directly, a text format other than PlainText, a tooltip that is neither a literal nor
`tooltip(...)` (item-model ToolTipRole answers included), and HTML setters.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
QT_PACKAGE = ROOT / "desktop" / "qt"
ALLOWED_IN = "plain_text.py"
MESSAGE_BOX_STATICS = {"warning", "information", "critical", "question", "about", "aboutQt"}
HTML_SETTERS = {"setHtml", "insertHtml", "showText"}


def _name(node: ast.AST) -> str:
    return node.id if isinstance(node, ast.Name) else node.attr if isinstance(node, ast.Attribute) else ""


def _is_tooltip_call(node: ast.AST) -> bool:
    return isinstance(node, ast.Call) and _name(node.func) == "tooltip"


def _is_literal(node: ast.AST) -> bool:
    """A string written in the code: a constant, or a choice between constants."""
    if isinstance(node, ast.IfExp):
        return _is_literal(node.body) and _is_literal(node.orelse)
    return isinstance(node, ast.Constant) and isinstance(node.value, str)


def problems_in(source: str, filename: str = "<source>") -> list[str]:
    """Every way `source` could show text as rich text, as 'file:line: what'."""
    found: list[str] = []
    tree = ast.parse(source, filename)
    for node in ast.walk(tree):
        where = f"{filename}:{getattr(node, 'lineno', '?')}"
        if isinstance(node, ast.Call):
            func, name = node.func, _name(node.func)
            if name == "QLabel":
                found.append(f"{where}: QLabel(...) (use PlainLabel)")
            elif name == "QMessageBox" and isinstance(func, ast.Name):
                found.append(f"{where}: QMessageBox(...) (use message_box)")
            elif name in MESSAGE_BOX_STATICS and isinstance(func, ast.Attribute) and _name(func.value) == "QMessageBox":
                found.append(f"{where}: QMessageBox.{name}(...) (use message_box)")
            elif name == "setTextFormat" and not (node.args and _name(node.args[0]) == "PlainText"):
                found.append(f"{where}: setTextFormat other than PlainText")
            elif name in ("setToolTip", "setWhatsThis") and not (
                node.args and (_is_literal(node.args[0]) or _is_tooltip_call(node.args[0]))
            ):
                found.append(f"{where}: {name} with text that is neither a literal nor tooltip(...)")
            elif name == "addRow" and node.args and isinstance(node.args[0], (ast.Constant, ast.JoinedStr, ast.BinOp)):
                found.append(f"{where}: addRow with a string label (QFormLayout makes an AutoText QLabel)")
            elif name in HTML_SETTERS:
                found.append(f"{where}: {name}(...) renders HTML")
        elif isinstance(node, ast.If) and any(_name(n) == "ToolTipRole" for n in ast.walk(node.test)):
            for statement in node.body:
                for inner in ast.walk(statement):
                    if (
                        isinstance(inner, ast.Return)
                        and inner.value is not None
                        and not _is_tooltip_call(inner.value)
                        and not (isinstance(inner.value, ast.Constant))
                    ):
                        found.append(f"{filename}:{inner.lineno}: ToolTipRole answer not wrapped in tooltip(...)")
    return found


def test_desktop_qt_shows_no_text_as_rich_text() -> None:
    modules = sorted(p for p in QT_PACKAGE.glob("*.py") if p.name != ALLOWED_IN)
    assert len(modules) > 10
    found = [problem for path in modules for problem in problems_in(path.read_text(encoding="utf-8"), path.name)]
    assert not found, "\n".join(found)


@pytest.mark.parametrize(
    "line",
    [
        "label = QLabel(name)",
        "label = QtWidgets.QLabel()",
        "box = QMessageBox(icon, title, text)",
        "QMessageBox.warning(self, title, text)",
        "label.setTextFormat(Qt.TextFormat.RichText)",
        "label.setTextFormat(Qt.TextFormat.AutoText)",
        "item.setToolTip(str(path))",
        "item.setToolTip(name if has_cam else 'no maps')",
        "item.setToolTip(f'<b>{name}</b>')",
        "form.addRow(f'{field}:', value)",
        "document.setHtml(text)",
        "if role == Qt.ItemDataRole.ToolTipRole:\n    return self._tooltip(result)",
    ],
)
def test_the_check_catches_each_way_in(line: str) -> None:
    """The scan can fail: each of these alone is reported."""
    assert problems_in(line), line


def test_the_check_passes_the_safe_forms() -> None:
    source = "\n".join(
        [
            "label = PlainLabel(name)",
            "label.setTextFormat(Qt.TextFormat.PlainText)",
            "item.setToolTip('Open a model')",
            "item.setToolTip('maps' if has_cam else 'no maps')",
            "item.setToolTip(tooltip(str(path)))",
            "form.addRow(PlainLabel('Preset:'), combo)",
            "box = message_box(QMessageBox.Icon.Warning, title, text)",
            "if role == Qt.ItemDataRole.ToolTipRole:\n    return tooltip(self._tooltip(result))",
        ]
    )
    assert problems_in(source) == []
