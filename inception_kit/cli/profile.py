"""`inception-kit profile`: its arguments and what it runs (moved here from the library)."""

from ..keras.profile import add_arguments, run

__all__ = ["add_arguments", "run"]
