"""Fine-tune CNN backbones on a folder of class folders and export self-describing ONNX.

A library with a thin command line (`convnet-train`, see training.cli) over it.
"""
