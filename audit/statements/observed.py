"""What the audit itself saw of each probe: the facts a statement of reasons is checked against.

Read from the stored run with the same rules as the scorecard (:func:`audit.outcomes.classify`):
when the post was sent (its receipt follows; for a notice or order criterion the deadline's clock
starts later, at the filing), the last look that saw it up and the first that saw it
down, and when the run's notice or order about it was sent and accepted.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from audit.engine import probe_facts
from audit.lifecycle import Action
from audit.outcomes import classify
from audit.packs import Pack
from audit.store import ObservationRow, ProbeRow, RunRow

__all__ = ["ObservedProbe", "observed_probes"]

_FILINGS = frozenset({Action.NOTICE, Action.ORDER})


@dataclass(frozen=True)
class ObservedProbe:
    probe_id: str
    criterion_id: str
    dsa_category: str
    expectation: str  # violating | control
    trigger: str  # proactive | notice | order
    modality: str  # text | image | speech
    language: str
    post_id: str | None
    received_at: float | None  # when the post was sent (the platform received it soon after)
    outcome: str | None
    last_visible: float | None
    first_down: float | None
    filing_sent: float | None  # the accepted notice or order: sent ...
    filing_accepted: float | None  # ... and its acceptance received

    @property
    def removed(self) -> bool:
        """The audit saw the post taken down (before it withdrew it)."""
        return self.first_down is not None and self.outcome not in (None, "inconclusive")

    @property
    def stayed_up(self) -> bool:
        return self.outcome in ("survived", "kept")


def _observed(
    row: ProbeRow, observations: list[ObservationRow], categories: dict[str, str]
) -> ObservedProbe:
    decided = classify(probe_facts(row, observations), observations)
    filed = sorted(
        (o for o in observations if o.action in _FILINGS and o.result == "filed"),
        key=lambda o: o.started_at,
    )
    return ObservedProbe(
        probe_id=row.probe_id,
        criterion_id=row.criterion_id,
        dsa_category=categories.get(row.criterion_id, ""),
        expectation=row.expectation,
        trigger=row.trigger,
        modality=str(row.probe.get("modality", "text")),
        language=str(row.probe.get("language", "")),
        post_id=row.post_id,
        received_at=row.submitted_at if row.submitted_at is not None else row.clock_start,
        outcome=decided.outcome.value if decided.outcome is not None else None,
        last_visible=decided.last_visible_at,
        first_down=decided.first_down_at,
        filing_sent=filed[0].started_at if filed else None,
        filing_accepted=filed[0].ended_at if filed else None,
    )


def observed_probes(
    run: RunRow, rows: Sequence[ProbeRow], observations: dict[str, list[ObservationRow]]
) -> list[ObservedProbe]:
    pack = Pack.model_validate(run.pack)
    categories = {c.id: c.dsa_category for c in pack.criteria}
    return [_observed(r, observations.get(r.probe_id, []), categories) for r in rows]
