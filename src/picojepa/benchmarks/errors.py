"""The benchmark's own error (a bundle it cannot compare, an output it may not write)."""
from picojepa.core.errors import PicoJepaError


class BenchError(PicoJepaError):
    """The benchmark cannot run with what it was given."""
