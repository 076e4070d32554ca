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
import time

import click
from tqdm import tqdm

from .errors import PicoJepaError, UsageError
from .redact import redact

EXIT_OK, EXIT_PARTIAL, EXIT_USAGE, EXIT_FAIL = 0, 1, 2, 3


def examples(*lines: str) -> str:
    """A command's --help epilog: its examples, one command line each, kept as written."""
    return "\b\nExamples:\n" + "\n".join(f"  {line}" for line in lines)


def fail(message: str, code: int = EXIT_FAIL) -> None:
    """Print `error: message` as one line on stderr and exit with `code`."""
    error(message)
    sys.exit(code)


def one_line(message, limit: int | None = None) -> str:
    """A message as one line (each run of whitespace one space), with any credentials masked
    (`redact`), cut to its first `limit` characters: how our messages are printed, and how a
    library's error is quoted inside one of ours."""
    return redact(" ".join(str(message).split()))[:limit]


def error(message: str) -> None:
    """One input failed and the command goes on: `error: message` on stderr, one line."""
    click.echo(f"error: {one_line(message)}", err=True)


def warn(message: str) -> None:
    click.echo(f"warning: {one_line(message)}", err=True)


def one_line_errors(fn):
    """Turn the toolchain's typed errors, and OS errors, into one line and exit code 3."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except UsageError as exc:
            fail(str(exc), EXIT_USAGE)
        except PicoJepaError as exc:
            fail(str(exc))
        except BrokenPipeError:  # the reader went away (e.g. `| head`): stop quietly
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            sys.exit(EXIT_FAIL)
        except OSError as exc:
            # OS-level failures (disk full, permissions): still one line, with the type so a bug
            # report can find it. Anything else is a bug and keeps its traceback.
            fail(f"{type(exc).__name__}: {exc}")
        except MemoryError:
            fail("out of memory (a recipe or option asks for more than this machine has?)")
        except KeyboardInterrupt:
            fail("interrupted", 130)

    return wrapper


class _Redacting(logging.Formatter):
    """Log records with any credentials masked, like every other line a command prints."""

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


def setup_logging(verbose: bool) -> None:
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, stream=sys.stderr)
    for h in logging.getLogger().handlers:
        h.setFormatter(_Redacting("%(levelname)s %(name)s: %(message)s"))


LINE_EVERY_S = 30.0  # without a terminal, one progress line at most this often


def progress(iterable=None, *, total: int | None = None, desc: str = "", disable: bool = False, **kw):
    """A tqdm bar on a terminal; in a log file (stderr not a terminal), a plain line
    `desc: n/total` at most every LINE_EVERY_S seconds and one at the end, instead of a bar
    redrawn thousands of times. Same calls as tqdm: iterate, update, set_postfix, close."""
    if disable or sys.stderr.isatty():
        return tqdm(iterable, total=total, desc=desc, disable=disable, leave=False, dynamic_ncols=True,
                    file=sys.stderr, **kw)
    return _Lines(iterable, total, desc)


class _Lines:
    def __init__(self, iterable, total, desc):
        self.iterable, self.desc, self.n, self.postfix = iterable, desc, 0, ""
        self.total = total if total is not None else (len(iterable) if hasattr(iterable, "__len__") else None)
        self.last = time.monotonic()

    def __iter__(self):
        for item in self.iterable:
            yield item
            self.update()
        self.close()

    def update(self, k: int = 1) -> None:
        self.n += k
        if time.monotonic() - self.last >= LINE_EVERY_S:
            self._line()

    def set_postfix(self, **kw) -> None:
        self.postfix = ", ".join(f"{k}={v}" for k, v in kw.items())

    def set_postfix_str(self, text: str) -> None:
        self.postfix = text

    def close(self) -> None:
        if self.n:
            self._line()
            self.n = 0

    def _line(self) -> None:
        self.last = time.monotonic()
        of = f"/{self.total}" if self.total else ""
        click.echo(f"{self.desc}: {self.n}{of}" + (f" ({self.postfix})" if self.postfix else ""), err=True)
