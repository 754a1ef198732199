"""The ``perdure`` command line."""

from perdure.cli._main import main

__all__ = ["main"]
