"""Run the import contracts of pyproject.toml ([tool.importlinter]) and read the report.

`lint-imports` runs in a fresh interpreter with the folder to check as its working
directory: import-linter puts that folder first on sys.path, so a copy of the packages in
a temporary folder is checked instead of the repository (the editable install's finder
comes after sys.path). No cache is written (`--no-cache`), so nothing appears in the
checkout.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = ROOT / "pyproject.toml"

_RUN_LINT_IMPORTS = "from importlinter.cli import lint_imports_command; lint_imports_command()"
_STATUS_LINE = re.compile(r"^(?P<name>.+) (?P<status>KEPT|BROKEN)(?: \(\d+ (?:warnings?|ignored imports?)\))?$")
_SUMMARY_LINE = re.compile(r"^Contracts: \d+ kept, \d+ broken\.$", re.MULTILINE)


def importlinter_config(pyproject: Path = PYPROJECT) -> dict:
    return tomllib.loads(pyproject.read_text(encoding="utf-8"))["tool"]["importlinter"]


def contracts(pyproject: Path = PYPROJECT) -> list[dict]:
    return importlinter_config(pyproject)["contracts"]


def root_packages(pyproject: Path = PYPROJECT) -> list[str]:
    return importlinter_config(pyproject)["root_packages"]


@dataclass
class LintResult:
    returncode: int
    output: str
    seconds: float
    status: dict[str, str]  # contract id -> "KEPT" or "BROKEN"
    names: dict[str, str]  # contract id -> name

    @property
    def broken(self) -> set[str]:
        return {cid for cid, status in self.status.items() if status == "BROKEN"}

    def section(self, contract_id: str) -> str:
        """The part of the report under 'Broken contracts' that explains `contract_id`."""
        lines = self.output.splitlines()
        try:
            start = lines.index("Broken contracts")
        except ValueError:
            return ""
        headings = [
            i
            for i in range(start + 1, len(lines) - 1)
            if lines[i] in self.names.values() and set(lines[i + 1]) == {"-"}
        ]
        for n, i in enumerate(headings):
            if lines[i] == self.names[contract_id]:
                end = headings[n + 1] if n + 1 < len(headings) else len(lines)
                return "\n".join(lines[i:end]) + "\n"
        return ""


def lint_imports(cwd: Path = ROOT, pyproject: Path = PYPROJECT, timeout: float = 120) -> LintResult:
    """Check every contract in `pyproject` against the root packages found in `cwd`."""
    try:
        import importlinter  # noqa: F401 - only asks whether it is installed
    except ImportError as error:  # pragma: no cover - an environment problem, not a test result
        raise RuntimeError(
            "import-linter is missing from this environment: ./run-tests.sh reinstalls .venv "
            "from pyproject.toml (the `test` extra), or run: pip install -e '.[train,test]'"
        ) from error
    env = {**os.environ, "COLUMNS": "1000", "NO_COLOR": "1", "TERM": "dumb"}
    started = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", _RUN_LINT_IMPORTS, "--no-cache", "--no-logo", str(pyproject)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    seconds = time.perf_counter() - started
    output = proc.stdout + proc.stderr
    names = {c["id"]: c["name"] for c in contracts(pyproject)}
    ids_by_name = {name: cid for cid, name in names.items()}
    assert len(ids_by_name) == len(names), "contract names in pyproject.toml must be unique"
    status = {}
    for line in output.splitlines():
        match = _STATUS_LINE.match(line.strip())
        if match and match["name"] in ids_by_name:
            status[ids_by_name[match["name"]]] = match["status"]
    if not _SUMMARY_LINE.search(output) or set(status) != set(names):
        raise AssertionError(f"lint-imports did not check every contract (exit {proc.returncode}):\n{output}")
    return LintResult(proc.returncode, output, seconds, status, names)


_FIND_CYCLES = r"""
import json, sys
import grimp

sys.setrecursionlimit(10000)
graph = grimp.build_graph(*sys.argv[1:], include_external_packages=False, cache_dir=None)
index, low, stack, on_stack, cycles = {}, {}, [], set(), []

def visit(module):  # Tarjan's strongly connected components
    index[module] = low[module] = len(index)
    stack.append(module)
    on_stack.add(module)
    for imported in sorted(graph.find_modules_directly_imported_by(module)):
        if imported not in index:
            visit(imported)
            low[module] = min(low[module], low[imported])
        elif imported in on_stack:
            low[module] = min(low[module], index[imported])
    if low[module] == index[module]:
        component = []
        while True:
            member = stack.pop()
            on_stack.discard(member)
            component.append(member)
            if member == module:
                break
        if len(component) > 1:
            cycles.append(sorted(component))

for module in sorted(graph.modules):
    if module not in index:
        visit(module)
report = []
for component in sorted(cycles):
    edges = []
    for importer in component:
        for imported in component:
            for detail in graph.get_import_details(importer=importer, imported=imported):
                line = f"l.{detail['line_number']}: {detail['line_contents']}"
                edges.append(f"{importer} -> {imported} ({line})")
    report.append({"modules": component, "imports": edges})
print(json.dumps(report))
"""


def module_cycles(cwd: Path = ROOT, pyproject: Path = PYPROJECT, timeout: float = 120) -> list[dict]:
    """Every import cycle between single modules of the root packages (lazy imports included).

    Finer than the acyclic_siblings contract, which looks for cycles between the children of
    each package: this also finds a package's __init__ and one of its own modules importing
    each other. Each cycle is {"modules": [...], "imports": ["a -> b (l.N: ...)", ...]}.
    """
    proc = subprocess.run(
        [sys.executable, "-c", _FIND_CYCLES, *root_packages(pyproject)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if proc.returncode != 0:
        raise AssertionError(f"could not build the import graph:\n{proc.stderr[-4000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])
