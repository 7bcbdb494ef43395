"""`inception-kit diagram`: its arguments and what it runs (moved here from the library)."""

from ..viz.diagram import add_arguments, run

__all__ = ["add_arguments", "run"]
