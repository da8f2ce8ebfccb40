"""Typed errors that the CLI turns into one line and an exit code.

Library code raises these instead of printing or calling ``sys.exit``; ``cxr_tf.cli.run``
catches them at the top of every ``python -m cxr_tf.<verb>`` command.
"""


class CxrError(Exception):
    """Base class of every error cxr_tf reports to the user as one line."""

    exit_code = 1


class UserError(CxrError):
    """A user mistake: bad flag, missing file or column, unknown name. Exit code 2."""

    exit_code = 2


class DataError(CxrError):
    """Bad input data met under ``--strict`` (or data that cannot be used at all). Exit code 1."""

    exit_code = 1
