"""Qt-free core of the desktop app: model loading, classification, activation maps.

Nothing here imports Qt, so the CLI and tests use it without a display.
"""
