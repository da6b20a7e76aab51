"""Exception types that mark a *user* error.

The command-line front ends turn any :class:`MedganError` into one readable line on stderr and exit
code 2; everything else is an unexpected failure (exit 1). Library code raises the subclass that also
derives from the matching built-in (``ValueError``, ``FileNotFoundError`` ...), so callers that catch the
built-in keep working.
"""

from __future__ import annotations


class MedganError(Exception):
    """Base class of every error caused by what the user gave us (config, input files, arguments)."""


class ConfigError(MedganError, ValueError):
    """A configuration value or key is wrong; the message names the dotted key."""


class InputError(MedganError, ValueError):
    """An input file or folder cannot be used (unreadable, ambiguous, inconsistent geometry ...)."""


class MissingFileError(MedganError, FileNotFoundError):
    """A path the user named does not exist."""


class OutputExistsError(MedganError, FileExistsError):
    """An output already exists and ``--overwrite`` was not given."""


class ModelPackageError(MedganError, ValueError):
    """A model package or checkpoint is missing files, is from an incompatible version, or is malformed."""


class OutputError(MedganError, OSError):
    """An output cannot be written (read-only folder, full disk, name too long, a file where a folder
    should be); the message names the output and says that nothing was written."""
