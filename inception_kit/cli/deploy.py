"""`inception-kit deploy`: its arguments and what it runs (moved here from the library)."""

from ..deploy import add_arguments, run

__all__ = ["add_arguments", "run"]
