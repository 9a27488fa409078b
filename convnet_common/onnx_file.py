"""Look inside an ONNX file before ONNX Runtime does: external data and metadata.

Models come from strangers. An ONNX tensor may keep its bytes in another file named
by a `location` string, and a hostile file can point that at `../../home/you/.ssh/id_rsa`,
an absolute path or a symlink leading out of the model's folder. Recent ONNX Runtime
releases refuse such paths themselves, but this check does not depend on the version
installed: it walks the protobuf just far enough to find every tensor (initializers,
node attributes, subgraphs, functions, sparse tensors) and refuses any external data
that is not a regular file inside the model's own folder, before anything is read.

The same pass reads `metadata_props`, so a metadata value that is not UTF-8 (which
makes ONNX Runtime's Python binding raise UnicodeDecodeError) or a multi-megabyte
entry is refused with a clear message too, and so are graph names that are not
UTF-8 (ONNX Runtime quotes them in its errors, with the same result). The `onnx` package is not needed: the
field numbers used below are fixed by onnx.proto and have never changed.

The walk also reads each node's type and inputs, so graphs that explode only when run
are refused here, before the test run: control flow (Loop, Scan, If) and size
operators whose constant sizes ask for gigabytes (the rules: graph_limits.py).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from convnet_common import model_format as fmt
from convnet_common.graph_limits import (
    CONTROL_FLOW_OPS,
    FLOAT,
    INT64,
    SIZE_INPUTS,
    TENSOR_FLOATS,
    TENSOR_INT32S,
    TENSOR_INT64S,
    TENSOR_RAW,
    GraphLimitError,
    check_constant_size,
    small_values,
)

# onnx.proto field numbers (message -> field) for the paths that can lead to a tensor.
_MODEL_GRAPH, _MODEL_METADATA, _MODEL_TRAINING_INFO, _MODEL_FUNCTIONS = 7, 14, 20, 25
_MODEL_TEXT, _MODEL_OPSET, _OPSET_DOMAIN = (2, 3, 4), 8, 1  # producer name and version, domain
_TRAINING_INFO_GRAPHS = (1, 2)  # initialization, algorithm
_FUNCTION_NODE, _FUNCTION_ATTRIBUTE = 7, 11
_GRAPH_NODE, _GRAPH_INITIALIZER, _GRAPH_SPARSE_INITIALIZER = 1, 5, 15
_GRAPH_NAME, _GRAPH_VALUE_INFOS, _VALUE_INFO_NAME = 2, (11, 12, 13), 1  # inputs, outputs, value_info
_NODE_ATTRIBUTE = 5
_NODE_TEXT = (1, 2, 3, 4, 7)  # input and output names, name, op_type, domain
_ATTR_TENSOR, _ATTR_GRAPH, _ATTR_TENSORS, _ATTR_GRAPHS = 5, 6, 10, 11
_ATTR_SPARSE_TENSOR, _ATTR_SPARSE_TENSORS = 22, 23
_ATTR_TEXT = (1, 21)  # name, ref_attr_name
_SPARSE_VALUES, _SPARSE_INDICES = 1, 2
_TENSOR_NAME, _TENSOR_EXTERNAL_DATA, _TENSOR_DATA_LOCATION = 8, 13, 14
_ENTRY_KEY, _ENTRY_VALUE = 1, 2
_EXTERNAL = 1  # TensorProto.DataLocation.EXTERNAL

_TENSOR_TYPE = 2
_NODE_INPUT, _NODE_OUTPUT, _NODE_OP_TYPE, _NODE_DOMAIN = 1, 2, 4, 7
_ATTR_INTS, _ATTR_FLOATS = (3, 8), (2, 7)  # Constant's value_int, value_ints; value_float, value_floats

MAX_GRAPH_NESTING = 32  # subgraphs inside subgraphs (If/Loop bodies); real models use a few
_WINDOW = 1 << 20


class ModelFileError(Exception):
    """The file is unsafe or not a readable ONNX protobuf; the message is one line."""


class DamagedModelFile(ModelFileError):
    """Not an ONNX protobuf at all: empty, truncated, or some other kind of file."""


@dataclass
class ModelFileFacts:
    """What the pre-check found: the metadata, and the external data files it allowed."""

    metadata: dict[str, str] = field(default_factory=dict)
    external_files: list[Path] = field(default_factory=list)


class _Source:
    """Random access to the file through a small window, so skipping a 500 MB tensor costs nothing.

    Plain reads, not mmap: a file truncated while we read it gives a short read we can
    report, where a mapping would kill the process with SIGBUS.
    """

    def __init__(self, handle: BinaryIO, size: int) -> None:
        self.handle, self.size = handle, size
        self._start, self._data = 0, b""

    def read(self, pos: int, count: int) -> bytes:
        end = pos + count
        if not (self._start <= pos and end <= self._start + len(self._data)):
            self.handle.seek(pos)
            self._start, self._data = pos, self.handle.read(max(count, _WINDOW))
            if len(self._data) < min(count, self.size - pos):
                raise DamagedModelFile("the file ended early (was it changed while being read?)")
        return self._data[pos - self._start : end - self._start]


def _damaged(reason: str) -> DamagedModelFile:
    return DamagedModelFile(reason)


def _varint(source: _Source, pos: int, end: int) -> tuple[int, int]:
    chunk = source.read(pos, min(10, end - pos))
    value = 0
    for index, byte in enumerate(chunk):
        value |= (byte & 0x7F) << (7 * index)
        if byte < 0x80:
            return value, pos + index + 1
    raise _damaged("a number runs past the end of its message" if len(chunk) < 10 else "a number is too long")


def _fields(source: _Source, start: int, end: int) -> Iterator[tuple[int, int, int, int]]:
    """(field number, wire type, value start, value end or varint value) for one message."""
    pos = start
    while pos < end:
        field_pos = pos
        key, pos = _varint(source, pos, end)
        number, wire = key >> 3, key & 7
        if number == 0 or wire not in (0, 1, 2, 5):
            raise _damaged(f"the data at byte {field_pos:,} is not ONNX protobuf")
        if wire == 0:
            value, pos = _varint(source, pos, end)
            yield number, wire, value, value
            continue
        if wire == 2:
            length, pos = _varint(source, pos, end)
            stop = pos + length
        else:
            stop = pos + (8 if wire == 1 else 4)
        if stop > end:
            raise _damaged(f"truncated: the field at byte {field_pos:,} runs past the end of its message")
        yield number, wire, pos, stop
        pos = stop


def _messages(source: _Source, start: int, end: int, wanted: int) -> Iterator[tuple[int, int]]:
    for number, wire, value_start, value_end in _fields(source, start, end):
        if number == wanted and wire == 2:
            yield value_start, value_end


def _check_utf8(source: _Source, start: int, end: int) -> None:
    """Names ONNX Runtime echoes back (in errors too) must be text: its binding raises otherwise."""
    try:
        source.read(start, end - start).decode("utf-8")
    except UnicodeDecodeError:
        raise ModelFileError(f"a name in the graph (at byte {start:,}) is not valid UTF-8 text") from None


def _text(source: _Source, start: int, end: int, what: str) -> str:
    try:
        return source.read(start, end - start).decode("utf-8")
    except UnicodeDecodeError:
        raise ModelFileError(f"{what} is not valid UTF-8 text") from None


class _Walker:
    def __init__(self, source: _Source, folder: Path) -> None:
        self.source = source
        self.folder = folder
        self.real_folder = Path(os.path.realpath(folder))
        self.facts = ModelFileFacts()
        self.constants: dict[str, list[float]] = {}  # the current graph's small constants, by name
        self.sized_nodes: list[tuple[str, list[str]]] = []  # (op type, size-input names) to judge at its end

    # graph structure ---------------------------------------------------------------
    def model(self) -> None:
        s = self.source
        for number, wire, start, end in _fields(s, 0, s.size):
            if wire != 2:
                continue
            if number == _MODEL_GRAPH:
                self.graph(start, end, 0)
            elif number in _MODEL_TEXT:
                _check_utf8(s, start, end)
            elif number == _MODEL_OPSET:
                for d_start, d_end in _messages(s, start, end, _OPSET_DOMAIN):
                    _check_utf8(s, d_start, d_end)
            elif number == _MODEL_METADATA:
                self.metadata_entry(start, end)
            elif number == _MODEL_TRAINING_INFO:
                for graph_number in _TRAINING_INFO_GRAPHS:
                    for g_start, g_end in _messages(s, start, end, graph_number):
                        self.graph(g_start, g_end, 0)
            elif number == _MODEL_FUNCTIONS:
                self.function(start, end)

    def function(self, start: int, end: int) -> None:
        for number, wire, f_start, f_end in _fields(self.source, start, end):
            if wire == 2 and number == _FUNCTION_NODE:
                self.node(f_start, f_end, 1)
            elif wire == 2 and number == _FUNCTION_ATTRIBUTE:
                self.attribute(f_start, f_end, 1)

    def graph(self, start: int, end: int, depth: int) -> None:
        if depth > MAX_GRAPH_NESTING:
            raise ModelFileError(f"subgraphs are nested more than {MAX_GRAPH_NESTING} levels deep")
        outer = self.constants, self.sized_nodes
        self.constants, self.sized_nodes = {}, []
        self.graph_fields(start, end, depth)
        for op_type, inputs in self.sized_nodes:
            try:
                check_constant_size(op_type, [self.constants.get(name) for name in inputs])
            except GraphLimitError as error:
                raise ModelFileError(str(error)) from None
        self.constants, self.sized_nodes = outer

    def graph_fields(self, start: int, end: int, depth: int) -> None:
        for number, wire, f_start, f_end in _fields(self.source, start, end):
            if wire != 2:
                continue
            if number == _GRAPH_NODE:
                self.node(f_start, f_end, depth)
            elif number == _GRAPH_NAME:
                _check_utf8(self.source, f_start, f_end)
            elif number in _GRAPH_VALUE_INFOS:
                for n_start, n_end in _messages(self.source, f_start, f_end, _VALUE_INFO_NAME):
                    _check_utf8(self.source, n_start, n_end)
            elif number == _GRAPH_INITIALIZER:
                name, values = self.tensor(f_start, f_end)
                if values is not None:
                    self.constants[name] = values
            elif number == _GRAPH_SPARSE_INITIALIZER:
                self.sparse_tensor(f_start, f_end)

    def node(self, start: int, end: int, depth: int) -> None:
        text: dict[int, list[str]] = {}
        for number, wire, f_start, f_end in _fields(self.source, start, end):
            if wire == 2 and number == _NODE_ATTRIBUTE:
                if text.get(_NODE_OP_TYPE) == ["Constant"]:
                    values = self.constant_value(f_start, f_end)
                    if values is not None and text.get(_NODE_OUTPUT):
                        self.constants[text[_NODE_OUTPUT][0]] = values
                self.attribute(f_start, f_end, depth)
            elif wire == 2 and number in (_NODE_INPUT, _NODE_OUTPUT, _NODE_OP_TYPE, _NODE_DOMAIN):
                text.setdefault(number, []).append(_text(self.source, f_start, f_end, "a node's name or type"))
            elif wire == 2 and number in _NODE_TEXT:
                _check_utf8(self.source, f_start, f_end)
        op_type = (text.get(_NODE_OP_TYPE) or [""])[0]
        if (text.get(_NODE_DOMAIN) or [""])[0] not in ("", "ai.onnx"):
            return
        if op_type in CONTROL_FLOW_OPS:
            raise ModelFileError(
                f"the graph has control flow (a {op_type} node); ConvNet Studio models have none, "
                "and a loop or branch can run without end or allocate without limit"
            )
        if op_type in SIZE_INPUTS:
            inputs = text.get(_NODE_INPUT, [])
            self.sized_nodes.append((op_type, [inputs[i] if i < len(inputs) else "" for i in SIZE_INPUTS[op_type]]))

    def constant_value(self, start: int, end: int) -> list[float] | None:
        """A Constant node's value (`value` tensor, `value_int(s)`, `value_float(s)`) if small and numeric."""
        ints: list[tuple[int, int, int, int]] = []
        floats: list[tuple[int, int, int, int]] = []
        for number, wire, f_start, f_end in _fields(self.source, start, end):
            if wire == 2 and number == _ATTR_TENSOR:
                return self.tensor(f_start, f_end)[1]
            if number in _ATTR_INTS:
                ints.append((TENSOR_INT64S, wire, f_start, f_end))
            elif number in _ATTR_FLOATS:
                floats.append((TENSOR_FLOATS, wire, f_start, f_end))
        if ints or floats:
            return small_values(self.source.read, INT64 if ints else FLOAT, ints or floats)
        return None

    def attribute(self, start: int, end: int, depth: int) -> None:
        for number, wire, f_start, f_end in _fields(self.source, start, end):
            if wire != 2:
                continue
            if number in (_ATTR_TENSOR, _ATTR_TENSORS):
                self.tensor(f_start, f_end)
            elif number in _ATTR_TEXT:
                _check_utf8(self.source, f_start, f_end)
            elif number in (_ATTR_GRAPH, _ATTR_GRAPHS):
                self.graph(f_start, f_end, depth + 1)
            elif number in (_ATTR_SPARSE_TENSOR, _ATTR_SPARSE_TENSORS):
                self.sparse_tensor(f_start, f_end)

    def sparse_tensor(self, start: int, end: int) -> None:
        for number, wire, f_start, f_end in _fields(self.source, start, end):
            if wire == 2 and number in (_SPARSE_VALUES, _SPARSE_INDICES):
                self.tensor(f_start, f_end)

    # tensors and metadata ----------------------------------------------------------
    def tensor(self, start: int, end: int) -> tuple[str, list[float] | None]:
        """Check a tensor's external data; (its name, its values when small, numeric and inline)."""
        name, external, entries = "", False, {}
        dtype, fields = 0, []
        for number, wire, f_start, f_end in _fields(self.source, start, end):
            if number == _TENSOR_TYPE and wire == 0:
                dtype = f_start
            elif number in (TENSOR_FLOATS, TENSOR_INT32S, TENSOR_INT64S, TENSOR_RAW):
                fields.append((number, wire, f_start, f_end))
            if number == _TENSOR_NAME and wire == 2:
                _check_utf8(self.source, f_start, f_end)
                name = self.source.read(f_start, min(f_end - f_start, 200)).decode("utf-8", "replace")
            elif number == _TENSOR_DATA_LOCATION and wire == 0:
                external = f_start == _EXTERNAL
            elif number == _TENSOR_EXTERNAL_DATA and wire == 2:
                key, value = self.entry(f_start, f_end, "an external-data entry")
                entries[key] = value
        if external or "location" in entries:
            self.check_external(name or "(unnamed)", entries)
            return name, None
        return name, small_values(self.source.read, dtype, fields)

    def entry(self, start: int, end: int, what: str) -> tuple[str, str]:
        key = value = ""
        for number, wire, f_start, f_end in _fields(self.source, start, end):
            if wire == 2 and number == _ENTRY_KEY:
                key = _text(self.source, f_start, f_end, f"the key of {what}")
            elif wire == 2 and number == _ENTRY_VALUE:
                if f_end - f_start > fmt.MAX_METADATA_VALUE_BYTES:
                    raise ModelFileError(
                        f"{what} '{fmt.printable(key)}' is {f_end - f_start:,} bytes, "
                        f"above the {fmt.MAX_METADATA_VALUE_BYTES:,}-byte limit"
                    )
                value = _text(self.source, f_start, f_end, f"the value of {what} '{fmt.printable(key)}'")
        return key, value

    def metadata_entry(self, start: int, end: int) -> None:
        key, value = self.entry(start, end, "model metadata")
        self.facts.metadata[key] = value

    def check_external(self, tensor: str, entries: dict[str, str]) -> None:
        """Allow only a regular file inside the model's folder, reached without leaving it."""
        location = entries.get("location", "")
        where = f"tensor '{fmt.printable(tensor)}' keeps its data in another file"
        if not location:
            raise ModelFileError(f"{where} but names none")
        shown = fmt.printable(location, 120)
        if "\0" in location:
            raise ModelFileError(f"{where} whose name holds a NUL character ({shown})")
        if os.path.isabs(location) or Path(location).drive or location.startswith(("/", "\\")):
            raise ModelFileError(f"{where} at an absolute path ({shown})")
        target = self.folder / location
        real = Path(os.path.realpath(target))
        if real != self.real_folder and self.real_folder not in real.parents:
            raise ModelFileError(f"{where} outside the model's folder ({shown})")
        if not real.is_file():
            raise ModelFileError(f"{where}, {shown}, which is missing or not a regular file")
        try:
            offset, length = int(entries.get("offset", "0")), int(entries.get("length", "0"))
            size = real.stat().st_size
        except (ValueError, OSError) as error:
            raise ModelFileError(f"{where}, {shown}, with an unusable offset or length ({error})") from None
        if offset < 0 or length < 0:
            raise ModelFileError(f"{where}, {shown}, at a negative offset or length")
        if offset + length > size:
            raise ModelFileError(f"{where}, {shown}, but that file is shorter than the data it should hold")
        if real not in self.facts.external_files:
            self.facts.external_files.append(real)


def inspect_model_file(path: str | os.PathLike[str]) -> ModelFileFacts:
    """Walk the ONNX protobuf of `path`; raise ModelFileError for unsafe or damaged files.

    OSError (missing file, permission denied) is left to the caller.
    """
    path = Path(path)
    with open(path, "rb") as handle:
        size = os.fstat(handle.fileno()).st_size
        if size == 0:
            raise DamagedModelFile("the file is empty (0 bytes)")
        walker = _Walker(_Source(handle, size), path.parent)
        try:
            walker.model()
        except RecursionError:
            raise ModelFileError("the file's messages are nested too deeply") from None
    try:
        fmt.check_metadata_size(walker.facts.metadata)
    except fmt.MetadataError as error:
        raise ModelFileError(str(error)) from None
    return walker.facts
