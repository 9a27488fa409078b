"""Adopt image classifiers made by other tools as ConvNet Studio models (`convnet-train adopt`).

A source reader (ONNX file, Keras file, SavedModel folder, Teachable Machine or Lobe export)
gives an `AdoptSource` (training/adopt/source.py): the original graph as float ONNX, a way to
run the original model for the check, and whatever settings the source itself reveals. The
settings still missing come from flags; the preprocessing is then put in front of the graph,
a softmax after logits, and the result is checked against the original before it is written.
"""
