"""docs/benchmarks.md from the suite's results: tables of measure | value | target | met?.

Pure formatting: no measuring here, so the tests can check the rendering with made-up
numbers and the document always says exactly what the JSON beside it holds.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

DASH = "—"


@dataclass
class Row:
    """One table row; `met` is None for rows that only inform (no target)."""

    measure: str
    value: str
    target: str = DASH
    met: bool | None = None
    why: str = ""  # for a missed target: what stands in the way, from the measured numbers


@dataclass
class Section:
    """A rendered section: what was measured, how, and its rows (or why it has none)."""

    key: str
    title: str
    method: str
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    status: str = "ran"  # ran | skipped | failed
    reason: str = ""


# --- number formatting --------------------------------------------------------------------


def finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def seconds(value: Any) -> str:
    """Milliseconds below a second, seconds above; 3 significant figures."""
    if not finite(value):
        return "n/a"
    return f"{value * 1000:.3g} ms" if value < 1 else f"{value:.3g} s"


def rate(value: Any, unit: str = "images/s") -> str:
    if not finite(value):
        return "n/a"
    text = f"{value:,.0f}" if value >= 100 else f"{value:.3g}"
    return f"{text} {unit}"


def ratio(value: Any) -> str:
    if not finite(value):
        return "n/a"
    return f"{value:.0f}×" if value >= 100 else f"{value:.3g}×"


def megabytes(value: Any) -> str:
    return f"{value:,.0f} MB" if finite(value) else "n/a"


def at_most(measure: str, value: Any, shown: str, limit: float, limit_text: str) -> Row:
    """A row whose target is an upper bound; unmeasurable values do not meet it."""
    return Row(measure, shown, f"≤ {limit_text}", finite(value) and value <= limit)


def at_least(measure: str, value: Any, shown: str, limit: float, limit_text: str) -> Row:
    """A row whose target is a lower bound; unmeasurable values do not meet it."""
    return Row(measure, shown, f"≥ {limit_text}", finite(value) and value >= limit)


# --- Markdown -----------------------------------------------------------------------------


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def met_text(met: bool | None) -> str:
    return DASH if met is None else ("yes" if met else "**no**")


def render_table(rows: Sequence[Row], first_columns: Sequence[str] = (), prefixes: Sequence[Sequence[str]] = ()) -> str:
    """A Markdown table: measure | value | target | met?, after any `first_columns` (one
    `prefixes` entry per row fills them)."""
    header = [*first_columns, "measure", "value", "target", "met?"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for index, row in enumerate(rows):
        prefix = list(prefixes[index]) if first_columns else []
        cells = [*prefix, row.measure, row.value, row.target, met_text(row.met)]
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    return "\n".join(lines)


def render_section(number: int, section: Section) -> str:
    parts = [f"## {number}. {section.title}", "", section.method.strip(), ""]
    if section.status == "skipped":
        parts += [f"**Not run:** {section.reason}", ""]
    elif section.status == "failed":
        parts += [f"**Failed:** {section.reason}", ""]
    if section.rows:
        parts += [render_table(section.rows), ""]
    parts += [f"- {note}" for note in section.notes]
    if section.notes:
        parts.append("")
    return "\n".join(parts)


def render_machine(machine: dict[str, Any]) -> str:
    labels = [
        ("cpu", "CPU"),
        ("cores", "cores (usable by the suite)"),
        ("ram_gb", "RAM (GB)"),
        ("os", "OS"),
        ("architecture", "architecture"),
        ("python", "Python"),
        ("onnxruntime", "ONNX Runtime"),
        ("opencv", "OpenCV"),
        ("numpy", "NumPy"),
        ("tensorflow", "TensorFlow"),
        ("keras", "Keras"),
        ("date", "date"),
    ]
    lines = ["| | |", "|---|---|"]
    lines += [f"| {label} | {_cell(machine.get(key, DASH))} |" for key, label in labels if key in machine]
    return "\n".join(lines)


def render_summary(sections: Sequence[Section]) -> str:
    """Every row that has a target, with its section, in one table."""
    rows: list[Row] = []
    prefixes: list[tuple[str]] = []
    for number, section in enumerate(sections, start=1):
        for row in section.rows:
            if row.met is not None:
                rows.append(row)
                prefixes.append((f"{number}. {section.title}",))
    if not rows:
        return "No target was measured in this run."
    table = render_table(rows, first_columns=("section",), prefixes=prefixes)
    reasons = [
        f"- **{prefix[0]}, {row.measure} not met:** {row.why}"
        for row, prefix in zip(rows, prefixes)
        if row.met is False and row.why
    ]
    return table + ("\n\n" + "\n".join(reasons) if reasons else "")


def render_document(
    machine: dict[str, Any], sections: Sequence[Section], how_to_rerun: str, quick: bool = False
) -> str:
    """The whole docs/benchmarks.md."""
    intro = [
        "# Benchmarks",
        "",
        "Generated by `./run-benchmarks.sh` (the `benchmarks` package); do not edit by hand. The raw",
        "numbers are in `benchmarks.json` beside this file.",
        "",
        "Every comparison is measured in one run on one machine, the two sides side by side",
        "(interleaved rounds where that is possible, the Keras side in its own process right",
        "after), and reported as medians. Targets are checked, never enforced: a slow or busy",
        "machine gives a **no**, not a failure. Absolute numbers depend on the machine below;",
        "the ratios are what carry over.",
        "",
    ]
    if quick:
        intro += [
            "**Quick mode**: tiny sizes to check that the suite runs end to end. These numbers are not",
            "benchmarks.",
            "",
        ]
    body = [
        "## How to rerun",
        "",
        how_to_rerun.strip(),
        "",
        "## Machine",
        "",
        render_machine(machine),
        "",
        "## Targets",
        "",
        render_summary(sections),
        "",
    ]
    for number, section in enumerate(sections, start=1):
        body.append(render_section(number, section))
    return "\n".join(intro + body).rstrip() + "\n"
