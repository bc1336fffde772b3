"""The lifecycle's vocabulary as types: a probe's state, a run's status, an observation's action
and result. Each is a ``StrEnum``, so the store and JSON keep the plain strings they always had
(``ProbeState.WATCHING == "watching"``) while the type checker catches a misspelt one."""

from __future__ import annotations

from enum import StrEnum

__all__ = [
    "OBSERVE_ACTION",
    "Action",
    "FilingResult",
    "ProbeState",
    "RunStatus",
    "View",
    "WithdrawalResult",
]


class ProbeState(StrEnum):
    """planned ─▶ submitting ─▶ noticing ─▶ watching ─▶ withdrawing ─▶ finished"""

    PLANNED = "planned"
    SUBMITTING = "submitting"
    NOTICING = "noticing"
    WATCHING = "watching"
    WITHDRAWING = "withdrawing"
    FINISHED = "finished"


class RunStatus(StrEnum):
    RUNNING = "running"
    COMPLETE = "complete"
    FAILED = "failed"  # the audit could not be carried out (the reason is stored); resumable
    CANCELLED = "cancelled"  # stopped by cleanup


class Action(StrEnum):
    """What an observation records the tool doing."""

    SUBMIT = "submit"
    LOOKUP = "lookup"
    RESUBMIT = "resubmit"
    NOTICE = "notice"
    ORDER = "order"
    STATUS = "status"
    WITHDRAW = "withdraw"


class View(StrEnum):
    """Whose eyes a status look used: the author's credentials, or an observer's (logged out,
    or a second account the platform cannot tie to the author)."""

    AUTHOR = "author"
    OBSERVER = "observer"


#: the ledger's action for a status request made as the observer (a look's author request is
#: recorded as ``status``)
OBSERVE_ACTION = "observe"


class FilingResult(StrEnum):
    """The results of a notice or order observation."""

    SENDING = "sending"  # the intent, committed before the filing is sent
    FILED = "filed"
    FAILED = "failed"
    ERROR = "error"  # the adapter raised


class WithdrawalResult(StrEnum):
    WITHDRAWN = "withdrawn"
    FAILED = "failed"
