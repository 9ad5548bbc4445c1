"""The library's errors share one base class, and each knows the exit status the CLI gives it.

Every error class of the package derives from :class:`GluonInceptionError` (and keeps a builtin
base such as ``ValueError`` where one fits, so ``except ValueError`` still catches it).
``gluon-inception`` turns any of them into one ``error: ...`` line and :attr:`exit_code`:

- 2 (:data:`USAGE`): the user can fix it: a bad option, missing or invalid data, a checkpoint or
  weight file that does not fit;
- 1 (:data:`FAILURE`): something failed at run time (a download, an export, a full disk);
- training that stopped on purpose has its own status (3, see ``TrainingStopped``).
"""

USAGE = 2
FAILURE = 1


class GluonInceptionError(Exception):
    """Base class of every error gluon-inception raises on purpose.

    Attributes
    ----------
    exit_code : int
        Exit status of ``gluon-inception`` when this error ends it: 2 for a usage error, 1 for a
        failure at run time.

    Examples
    --------
    >>> from gluon_inception.errors import GluonInceptionError
    >>> from gluon_inception.weights import UnknownPretrainedError
    >>> issubclass(UnknownPretrainedError, (GluonInceptionError, ValueError)), UnknownPretrainedError.exit_code
    (True, 2)
    """

    exit_code = FAILURE


class UsageError(GluonInceptionError, ValueError):
    """A mistake the user can fix: a bad option or argument, data or a file that does not fit."""

    exit_code = USAGE


class MissingInputError(UsageError, FileNotFoundError):
    """A file or folder the user named does not exist or is not what it should be."""


class NoSpaceError(GluonInceptionError, OSError):
    """The disk is full: a checkpoint, a download or a dataset did not fit. Exit status 1, as any
    failure at run time; the message names the folder and what to do."""

    exit_code = FAILURE
