"""The adapter protocol: how the engine talks to one platform.

Adapters collect data and never judge. Each call returns an explicit result; a fault or an answer
the adapter cannot read is ``error``/``unknown``, never a removal. Retries, rate limits and the
evidence record are handled by :class:`audit.http.PlatformClient`, which adapters use for HTTP.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

from audit.errors import AuditError
from audit.lifecycle import OBSERVE_ACTION, View
from audit.media_file import MediaFile, media_file
from audit.probe import Probe
from audit.redaction import Redactor

__all__ = [
    "NOT_FOUND",
    "OBSERVE_ACTION",
    "Adapter",
    "EvidenceLedgerSink",
    "NoticeResult",
    "PostState",
    "StatusResult",
    "SubmitKind",
    "SubmitResult",
    "View",
    "WithdrawResult",
    "both_views",
    "never_arrived",
    "usable_post_id",
]


class SubmitKind(StrEnum):
    ACCEPTED = "accepted"  # the platform published it and gave a post id
    REJECTED = "rejected"  # the platform refused it at submission (e.g. blocked at upload)
    ERROR = "error"  # no usable answer (fault, timeout, unreadable body)


class PostState(StrEnum):
    VISIBLE = "visible"  # the post is up
    REMOVED = "removed"  # the platform says it removed it (moderation)
    GONE = "gone"  # it is not there, and the platform does not say why
    UNKNOWN = "unknown"  # the answer matched nothing the adapter knows
    ERROR = "error"  # no usable answer

    @property
    def is_measured(self) -> bool:
        return self in (PostState.VISIBLE, PostState.REMOVED, PostState.GONE)


@dataclass(frozen=True)
class SubmitResult:
    kind: SubmitKind
    post_id: str | None = None
    detail: str = ""
    data: dict[str, str] = field(default_factory=dict)
    # when the attempt the platform accepted was sent (the tool's clock), and the platform's own
    # timestamp of the post where its answer gives one; None when not known
    sent_at: float | None = None
    platform_time: float | None = None


NOT_FOUND = "not found: never reached the platform"  # a lookup's answer, as a result's detail


async def made_media(probe: Probe) -> MediaFile | SubmitResult:
    """The probe's media file, made off the event loop; or the failed submission that says
    why it could not be made (never a refusal by the platform)."""
    try:
        media = await asyncio.to_thread(media_file, probe)
    except AuditError as exc:
        return SubmitResult(SubmitKind.ERROR, detail=f"media could not be produced: {exc}")
    if media is None:
        return SubmitResult(SubmitKind.ERROR, detail="media probe without media")
    return media


#: the longest post id taken from an answer; a platform's ids are short
MAX_POST_ID = 512


def usable_post_id(value: object) -> str | None:
    """A post id an answer gave, if it is one the audit can use: text, not empty, at most
    :data:`MAX_POST_ID` characters, every character printable (no control character, NUL or
    line break: the id goes into request paths and into the store, and PostgreSQL text cannot
    hold a NUL). None otherwise: the answer is then malformed, a platform fault like any other
    garbage, never an acceptance."""
    if isinstance(value, str) and 0 < len(value) <= MAX_POST_ID and value.isprintable():
        return value
    return None


def never_arrived(result: SubmitResult) -> bool:
    """Whether a lookup says the platform never got the post (so sending it again is safe)."""
    return result.kind is SubmitKind.ERROR and result.detail.startswith(NOT_FOUND)


@dataclass(frozen=True)
class StatusResult:
    state: PostState
    detail: str = ""
    view: View = View.AUTHOR  # the view that decided ``state``
    # in a look made in both views, what the author's view said (the observer's decides)
    author_state: PostState | None = None


def both_views(observer: StatusResult, author: StatusResult) -> StatusResult:
    """One look made in both views. The observer's (the public's) view decides: a post removed
    for the public counts as removed, one the public still sees counts as up whatever its author
    is shown. A fault or an unreadable answer in either view is never evidence: the look is
    then that fault (the engine looks again)."""
    if not author.state.is_measured and observer.state.is_measured:
        return StatusResult(
            author.state, f"author view: {author.detail}", View.OBSERVER, author.state
        )
    detail = observer.detail
    if observer.state.is_measured and author.state != observer.state:
        detail = f"{detail}; author view: {author.state.value}".lstrip("; ")
    return StatusResult(observer.state, detail, View.OBSERVER, author.state)


@dataclass(frozen=True)
class NoticeResult:
    filed: bool
    reference: str | None = None
    detail: str = ""
    sent_at: float | None = None  # when the accepted filing attempt was sent
    platform_time: float | None = None  # the platform's own timestamp of the filing


@dataclass(frozen=True)
class WithdrawResult:
    withdrawn: bool  # True when the post is no longer up after the call (deleted or already gone)
    detail: str = ""


class EvidenceLedgerSink(Protocol):
    """What an adapter needs of the run's evidence ledger: somewhere to record each exchange
    and the redactor that cuts secrets from it (adapters never import the evidence package)."""

    @property
    def redactor(self) -> Redactor: ...

    def append(self, probe_id: str | None, entry: dict[str, Any]) -> object: ...


class Adapter(Protocol):
    """One platform, reached through its API. All methods must return, never raise, on faults
    (the engine still contains an exception to the probe's step). Every exchange a call makes
    carries the probe id it is given."""

    name: str
    supports_idempotency: bool
    withdraw_removed: bool  # a post seen removed (still addressable) must still be withdrawn
    # the platform de-duplicates filings by a key, so a filing cut short by a restart can be
    # sent again (answered with the first filing and its time) without filing twice
    notice_idempotent: bool

    async def submit(self, probe: Probe, idempotency_key: str) -> SubmitResult:
        """Post the probe; the idempotency key is the probe id (no marker in the content)."""

    async def lookup(self, probe: Probe, idempotency_key: str) -> SubmitResult | None:
        """Find a post made with this key (after a crash mid-submit); None if not supported."""

    async def status(self, post_id: str, probe_id: str) -> StatusResult:
        """Look at the post once (``probe_id`` attributes the exchange in the ledger): as the
        author, or where the target names an observer, as the observer (and as the author too
        when both views are looked at; :func:`both_views`). The observer's requests are
        recorded under the action :data:`OBSERVE_ACTION`."""

    async def notice(self, post_id: str, probe: Probe, reason: str, kind: str) -> NoticeResult:
        """File a report (kind ``notice``) or removal order (kind ``order``) about the post."""

    async def withdraw(self, post_id: str, probe_id: str) -> WithdrawResult:
        """Delete the post as its author."""

    async def preflight(self) -> str | None:
        """Check, before any probe is sent, that the target answers and takes the tool's
        credentials; None when it does, else what is wrong (one line)."""

    async def aclose(self) -> None:
        """Release connections."""
