"""ConvNet Studio desktop: classify images with self-describing ONNX models."""
