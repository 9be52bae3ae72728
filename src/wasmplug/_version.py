"""The version of wasmplug (kept apart so that private modules can name it)."""

__version__ = "0.1.0"
