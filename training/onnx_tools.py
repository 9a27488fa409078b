"""Small clean-ups of tf2onnx's output graphs."""

from __future__ import annotations

import numpy as np


def fold_initializer_shapes(model):
    """Replace `Shape(initializer)` by the constant shape and drop initializers left unused.

    tf2onnx keeps e.g. a (400, 1, 1, 120) float tensor whose only consumer is a Shape
    node; neither fp16 nor int8 conversion can shrink it. Returns a new model.
    """
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.ModelProto.FromString(model.SerializeToString())
    graph = model.graph
    initializers = {init.name: init for init in graph.initializer}
    kept_nodes, new_initializers = [], []
    for node in graph.node:
        if node.op_type == "Shape" and node.domain in ("", "ai.onnx") and node.input[0] in initializers:
            dims = list(initializers[node.input[0]].dims)
            attributes = {a.name: helper.get_attribute_value(a) for a in node.attribute}
            start, end = attributes.get("start", 0), attributes.get("end", len(dims))
            new_initializers.append(numpy_helper.from_array(np.array(dims[start:end], dtype=np.int64), node.output[0]))
        else:
            kept_nodes.append(node)
    if not new_initializers:
        return model
    del graph.node[:]
    graph.node.extend(kept_nodes)
    graph.initializer.extend(new_initializers)
    used = {name for node in graph.node for name in node.input} | {o.name for o in graph.output}
    for subgraph_node in graph.node:  # inputs referenced from subgraphs (If/Loop bodies)
        for attribute in subgraph_node.attribute:
            for sub in list(attribute.graphs) + ([attribute.g] if attribute.HasField("g") else []):
                used.update(name for n in sub.node for name in n.input)
    unused = [init for init in graph.initializer if init.name not in used]
    for init in unused:
        graph.initializer.remove(init)
    graph_inputs = [i for i in graph.input if i.name in {init.name for init in unused}]
    for graph_input in graph_inputs:
        graph.input.remove(graph_input)
    return model
