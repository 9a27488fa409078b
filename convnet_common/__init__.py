"""Pieces both halves of ConvNet Studio agree on: the model-file contract, image decoding
and safe file writes. Imports neither Qt nor TensorFlow, so either side may use it."""
