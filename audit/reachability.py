"""Whether the target still answers: the run's watch on its platform, fed by the ledger.

Every exchange the tool makes goes to the evidence ledger; this watch sees the same entries and
sorts each into one of three kinds:

* a *working answer*: the platform answered over HTTP with a status the audit can act on (below
  500, not 429, not a refusal of the credentials). It clears the watch.
* a sign the target is *down*: no answer at all (connection refused, timeout, a reset), a
  gateway's 502/503/504 (the service behind it is not answering), or a refusal of the tool's
  credentials (401, 403, 407: a wrong token answers at once, forever).
* anything else — a 500, a 429, an answer the adapter cannot read — says the platform is up
  but did not answer usably; such faults are the probes' business (retried, replaced, never an
  outcome), not a reason to end the run, and they neither clear nor feed the watch. A platform
  that answers 500 only for the posts it has not removed is thus measured to the end, its
  unknowns counted against it, instead of ending the run unscored.

A target is *dead* once the signs have kept coming for ``give_up_after`` seconds with no
working answer between: from the first sign after the last working answer to the latest sign
is that long, with at least :data:`MIN_FAILURES` signs. Silence is not death: while nothing is
asked (probes waiting for their next look), nothing fails, and one fault followed by hours of
waiting is one fault. A failed withdrawal does not count towards it (any working answer does):
withdrawals have their own bounded retries and leave what fails to ``cleanup``, and a platform
that refuses only deletions still lets every probe be measured.

The engine asks :meth:`Reachability.dead` between steps and ends the run with the reason (the
last failure's own words: ``ConnectError: ...``, ``HTTP 401``) rather than retrying for hours.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from audit.lifecycle import Action

__all__ = ["MIN_FAILURES", "Reachability", "TargetDown", "down_sign", "working_answer"]

MIN_FAILURES = 3  # two isolated faults hours apart do not make a dead target
_NOT_WORKING = frozenset({401, 403, 407, 429})
_NOT_MEASURING = frozenset({Action.WITHDRAW})  # actions whose failures do not make it dead


_DOWN = frozenset({401, 403, 407, 502, 503, 504})


def _status(entry: dict[str, Any]) -> int | None:
    status = entry.get("status")
    return status if isinstance(status, int) and not isinstance(status, bool) else None


def working_answer(entry: dict[str, Any]) -> bool:
    """Whether a ledger entry is an answer the audit can act on (see the module's text)."""
    status = _status(entry)
    if status is None or entry.get("error"):
        return False
    return status < 500 and status not in _NOT_WORKING


def down_sign(entry: dict[str, Any]) -> bool:
    """Whether a ledger entry says the target is not answering at all (see the module's text)."""
    status = _status(entry)
    return status is None or status in _DOWN


def _failure(entry: dict[str, Any]) -> str:
    error = entry.get("error")
    status = entry.get("status")
    what = str(error) if error else f"HTTP {status}"
    if isinstance(status, int) and status in (401, 403, 407):
        what += " (the platform refuses the tool's credentials: check the target's token)"
    action = entry.get("action")
    return f"{action}: {what}" if action else what


@dataclass(frozen=True)
class TargetDown:
    """How long the target has not given a working answer, and its last failure."""

    since: float  # the first failed exchange after the last working answer
    seconds: float
    last_failure: str
    failures: int

    def reason(self) -> str:
        return (
            f"the target gave no working answer for {self.seconds:.0f} s "
            f"({self.failures} failed exchanges; last: {self.last_failure})"
        )


class Reachability:
    """Tracks the target's answers as the ledger records them."""

    def __init__(self) -> None:
        self._failing_since: float | None = None
        self._failed_at = 0.0
        self._failures = 0
        self._last_failure = ""
        self.answers = 0

    def record(self, probe_id: str | None, entry: dict[str, Any]) -> None:
        """One exchange, as written to the ledger (``probe_id`` unused: any answer counts)."""
        del probe_id
        if working_answer(entry):
            self.answers += 1
            self._failing_since = None
            self._failures = 0
            return
        if entry.get("action") in _NOT_MEASURING or not down_sign(entry):
            return
        started, ended = entry.get("started_at"), entry.get("ended_at")
        if not isinstance(started, int | float):
            return
        if self._failing_since is None:
            self._failing_since = float(started)
        self._failed_at = float(ended) if isinstance(ended, int | float) else float(started)
        self._failures += 1
        self._last_failure = _failure(entry)

    def dead(self, give_up_after: float) -> TargetDown | None:
        """The outage, once the exchanges have kept failing for ``give_up_after`` seconds."""
        if self._failing_since is None or self._failures < MIN_FAILURES:
            return None
        span = self._failed_at - self._failing_since
        if span < give_up_after:
            return None
        return TargetDown(self._failing_since, span, self._last_failure, self._failures)
