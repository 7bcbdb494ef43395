"""`inception-kit train`: its arguments and what it runs (moved here from the library)."""

from ..train.training import add_arguments, run

__all__ = ["add_arguments", "run"]
