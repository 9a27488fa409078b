"""PySide6 views of the desktop app. Widgets only display; desktop.core does the work."""
