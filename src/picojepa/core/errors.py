"""Typed errors shared by every stage. Each message names the offending input and the reason."""


class PicoJepaError(Exception):
    """Base of every error the toolchain raises on purpose (CLIs print it as one line)."""


class UsageError(PicoJepaError, ValueError):
    """The command line asks for something impossible (a malformed option value, a quorum larger
    than the voters): the CLIs exit with the usage code, 2, as click does for its own checks."""


class DecodeError(PicoJepaError, ValueError):
    """A video file could not be turned into a clip."""

    def __init__(self, path, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class FFmpegMissingError(PicoJepaError, RuntimeError):
    """torchcodec could not load the FFmpeg shared libraries."""

    HOW_TO = (
        "torchcodec needs the FFmpeg shared libraries (versions 4 to 7): install them with "
        "'apt-get install ffmpeg' (Debian/Ubuntu), 'conda install ffmpeg -c conda-forge' or "
        "'brew install ffmpeg', or run 'make install' as root"
    )

    def __init__(self, detail: str = ""):
        super().__init__(self.HOW_TO + (f" ({detail})" if detail else ""))


class BundleError(PicoJepaError, ValueError):
    """A deployment bundle is missing, tampered with, or incompatible."""


class DataLayoutError(PicoJepaError, ValueError):
    """A data root, CSV or class list is malformed."""
