"""What a model's graph may ask for when run, judged from the file (used by onnx_file.py).

A 511-byte model allocated about 6 GB in its test run (ConstantOfShape of a constant
[40000, 40000]); a Loop with a trip count of 10^12 hung the app and the CLI at load.
Control flow (Loop, Scan, If) is refused outright: ConvNet Studio models, tf2onnx exports
of feed-forward networks, have none. ConstantOfShape, Expand, Tile and Range are refused
when their size inputs are constants (initializers or Constant nodes, however encoded)
that ask for more than MAX_CONSTANT_ELEMENTS. Sizes computed at run time from the
input's shape (tf2onnx's ConstantOfShape on a Shape output) are not judged here.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Callable


class GraphLimitError(Exception):
    """The graph asks for too much when run; onnx_file turns it into ModelFileError."""


# Graphs that explode only when run. Control flow can loop 10^12 times or build
# anything; ConvNet Studio models (tf2onnx exports of feed-forward networks) have none.
CONTROL_FLOW_OPS = frozenset({"Loop", "Scan", "If"})
# Operators whose output size comes from an input's values, and which input (or inputs) that is.
SIZE_INPUTS = {"ConstantOfShape": (0,), "Expand": (1,), "Tile": (1,), "Range": (0, 1, 2)}
MAX_CONSTANT_ELEMENTS = 64_000_000  # elements one such operator may make from constant sizes (256 MB of float32)
_SMALL_TENSOR = 64  # constant tensors read for their values: shapes and scalars are this small
TENSOR_FLOATS, TENSOR_INT32S, TENSOR_INT64S, TENSOR_RAW = 4, 5, 7, 9  # TensorProto fields
FLOAT, INT32, INT64 = 1, 6, 7  # TensorProto data types


def small_values(
    read: Callable[[int, int], bytes], dtype: int, fields: list[tuple[int, int, int, int]]
) -> list[float] | None:
    """Up to _SMALL_TENSOR int32/int64/float values from raw, packed or unpacked data; None otherwise."""
    if not fields or len(fields) > _SMALL_TENSOR or dtype not in (FLOAT, INT32, INT64):
        return None
    if all(wire == 0 for _, wire, _, _ in fields):  # unpacked varints
        return [float(v - (1 << 64) if v >= 1 << 63 else v) for _, _, v, _ in fields]
    if all(wire == 5 for _, wire, _, _ in fields):  # unpacked float32s
        return [struct.unpack("<f", read(start, 4))[0] for _, _, start, _ in fields]
    number, wire, start, end = fields[0]
    if len(fields) != 1 or wire != 2 or end - start > 8 * _SMALL_TENSOR:
        return None
    data = read(start, end - start)
    if number == TENSOR_RAW:
        code = {FLOAT: "f", INT32: "i", INT64: "q"}[dtype]
        if len(data) % struct.calcsize(code):
            return None
        return [float(v) for v in struct.unpack(f"<{len(data) // struct.calcsize(code)}{code}", data)]
    if number == TENSOR_FLOATS or (number != TENSOR_RAW and dtype == FLOAT):
        return None if len(data) % 4 else list(struct.unpack(f"<{len(data) // 4}f", data))
    values, pos = [], 0
    while pos < len(data):  # packed varints (int32_data, int64_data), two's complement
        value, shift = 0, 0
        while True:
            if pos >= len(data) or shift > 63:
                return None
            byte = data[pos]
            pos += 1
            value |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                break
        values.append(float(value - (1 << 64) if value >= 1 << 63 else value))
    return values


def check_constant_size(op_type: str, inputs: list[list[float] | None]) -> None:
    """Refuse ConstantOfShape/Expand/Tile/Range whose constant size inputs ask for too many elements."""
    if any(values is None for values in inputs):
        return  # computed at run time from the input's shape (tf2onnx does this): not judged here
    if op_type == "Range":
        start, limit, delta = (values[0] if values else 0.0 for values in inputs)
        if delta == 0 or not all(math.isfinite(v) for v in (start, limit, delta)):
            raise GraphLimitError("the graph's Range node has a step of zero or a non-finite bound")
        count = max(0.0, math.ceil((limit - start) / delta))
    else:
        count = math.prod(max(0.0, v) for v in inputs[0])
    if count > MAX_CONSTANT_ELEMENTS:
        raise GraphLimitError(
            f"the graph's {op_type} node makes {count:,.0f} elements from constant sizes; "
            f"at most {MAX_CONSTANT_ELEMENTS:,} are allowed (running it would need gigabytes)"
        )
