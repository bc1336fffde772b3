"""Errors raised by platform-audit.

Hierarchy::

    AuditError                  base of everything the tool raises on purpose
    ├── InputError              bad pack, plan, profile or flag: exit code 2
    ├── PlatformFault           a platform did not answer usably (kept as evidence, never a removal)
    └── RuntimeFailure          the audit could not be carried out: exit code 4
        └── TargetUnreachable   the target gave no working answer for too long

Library code raises these; only the CLI turns them into messages and exit codes.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["AuditError", "InputError", "PlatformFault", "RuntimeFailure", "TargetUnreachable"]


class AuditError(Exception):
    """Base class for errors platform-audit raises on purpose."""


class InputError(AuditError):
    """A user-supplied file or flag is invalid.

    The message names the file, the place inside it, what was expected and what was found.
    """

    def __init__(
        self,
        message: str,
        *,
        source: str | Path | None = None,
        where: str | None = None,
    ) -> None:
        self.source = str(source) if source is not None else None
        self.where = where
        self.message = message
        text = message
        if source is not None:
            text += f" in {source}"
        if where:
            text += f", {where}"
        super().__init__(text)

    def naming(self, source: str | Path | None) -> InputError:
        """This error, naming ``source`` when it names no file yet."""
        if self.source is not None or source is None:
            return self
        return InputError(self.message, source=source, where=self.where)


class PlatformFault(AuditError):
    """A platform's answer could not be used (timeout, 5xx, garbage body...)."""


class RuntimeFailure(AuditError):
    """The audit could not be carried out (target unreachable, store unusable...)."""


class TargetUnreachable(RuntimeFailure):
    """The target gave no working answer for longer than the run allows (dead, wrong port or
    token): the run ends, failed, with this reason, and `resume` continues it later."""
