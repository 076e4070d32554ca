"""What every picojepa CLI shares: exit codes, one-line errors, logging to stderr.

Exit codes (all commands):
    0  everything succeeded
    1  partial: some inputs failed (each named on stderr), the others produced their results
    2  usage error (bad option or argument; click's own code)
    3  failure: nothing succeeded, or a fatal error (bad bundle, config, data root, FFmpeg missing)
"""
from __future__ import annotations

import functools
import logging
import os
import sys

import click

from .errors import PicoJepaError

EXIT_OK, EXIT_PARTIAL, EXIT_USAGE, EXIT_FAIL = 0, 1, 2, 3


def fail(message: str, code: int = EXIT_FAIL) -> None:
    """Print `error: message` as one line on stderr and exit with `code`."""
    error(message)
    sys.exit(code)


def error(message: str) -> None:
    """One input failed and the command goes on: `error: message` on stderr, one line."""
    click.echo(f"error: {' '.join(str(message).split())}", err=True)


def warn(message: str) -> None:
    click.echo(f"warning: {' '.join(str(message).split())}", err=True)


def one_line_errors(fn):
    """Turn the toolchain's typed errors, and OS errors, into one line and exit code 3."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except PicoJepaError as exc:
            fail(str(exc))
        except BrokenPipeError:  # the reader went away (e.g. `| head`): stop quietly
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            sys.exit(EXIT_FAIL)
        except (OSError, ValueError) as exc:
            # OS-level failures (disk full, permissions) and value errors from libraries:
            # still one line, with the type so a bug report can find it.
            fail(f"{type(exc).__name__}: {exc}")
        except KeyboardInterrupt:
            fail("interrupted", 130)

    return wrapper


def setup_logging(verbose: bool) -> None:
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
