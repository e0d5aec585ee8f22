"""The exception hierarchy. Every error fastraid raises derives from FastRaidError.

The Rust core raises these classes by name (src/py/errors.rs imports this module), so the
hierarchy lives in one place and can use multiple inheritance, which PyO3's
``create_exception!`` cannot express.
"""

from __future__ import annotations

import io


class FastRaidError(Exception):
    """Base class of every error raised by fastraid."""


class InvalidArgumentError(FastRaidError, ValueError):
    """An argument has the right type but a value fastraid cannot use (lengths differ, too few
    blocks, an output that overlaps an input, ...). The message names the argument."""


class BufferTypeError(FastRaidError, TypeError):
    """An argument is not a usable buffer: no buffer protocol, read-only where an output is
    needed, or not C-contiguous."""


class TooManyFailuresError(InvalidArgumentError):
    """More blocks are lost than the parity can rebuild."""


class InternalError(FastRaidError, RuntimeError):
    """A bug in fastraid: a Rust panic caught at the boundary. Please report it."""


class MemberError(FastRaidError, OSError):
    """A member device or image cannot be opened or read (missing, truncated, I/O error).
    The message names the path."""


class AssemblyError(FastRaidError, ValueError):
    """The members given do not make a usable array: too many missing, members of several
    arrays, the same member twice, no md superblock at all, ..."""


class NotAnArrayError(AssemblyError):
    """A path holds no usable md superblock."""


class NotSupportedError(FastRaidError, NotImplementedError):
    """Recognised but not handled yet (writing, a reshape in progress, ...)."""


class ReadOnlyError(FastRaidError, io.UnsupportedOperation):
    """A write to an array (or volume) opened with ``readonly=True``."""


class MemberInUseError(FastRaidError, ValueError):
    """A member given to ``create`` already holds an md superblock, a file system or a
    partition table (the message says what, with the md level, UUID and creation time where
    there is one). Pass ``force=True`` to overwrite it."""


class CancelledError(FastRaidError):
    """A long operation was stopped by its progress callback."""


__all__ = [
    "AssemblyError",
    "BufferTypeError",
    "CancelledError",
    "FastRaidError",
    "InternalError",
    "InvalidArgumentError",
    "MemberInUseError",
    "MemberError",
    "NotAnArrayError",
    "ReadOnlyError",
    "NotSupportedError",
    "TooManyFailuresError",
]
