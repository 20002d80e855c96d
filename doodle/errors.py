"""The errors a user can cause, as opposed to bugs.

Stage scripts turn these into a one-line message (``doodle.cli.run_stage``); anything else
is a programming error and shows its traceback.
"""

from __future__ import annotations


class DoodleError(Exception):
    """Base of every expected, user-fixable error."""


class ConfigError(DoodleError, ValueError):
    """params.yaml has a missing, unknown or ill-typed key (the message names it)."""


class InputError(DoodleError, ValueError):
    """Bad input data: the message names the file (and row where there is one)."""


class SubmitRefused(DoodleError):
    """stages/submit.py will not upload this submission (the message says why)."""
