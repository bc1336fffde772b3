"""Whose view decided a run's status looks, and where the author's view disagreed with it.

A target may name an observer (logged out, or a second account) so that looks see a post as the
public does; with ``author_view`` each look is made as the author too. The observer's view then
decides, and a look where one view saw the post up and the other down is a disagreement,
reported per probe and counted here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from audit.i18n import N_
from audit.lifecycle import Action, View
from audit.scorecard_model import LookViews
from audit.store import ObservationRow

if TYPE_CHECKING:
    from audit.i18n import Language

__all__ = ["look_views", "look_views_of", "probe_views", "views_line"]

_MEASURED = frozenset({"visible", "removed", "gone"})


def _disagrees(obs: ObservationRow) -> bool:
    author = obs.author_result
    if author is None or author not in _MEASURED or obs.result not in _MEASURED:
        return False
    return (author == "visible") != (obs.result == "visible")


def _looks(observations: Iterable[ObservationRow]) -> list[ObservationRow]:
    return [o for o in observations if o.action == Action.STATUS and o.result in _MEASURED]


def probe_views(observations: Sequence[ObservationRow]) -> tuple[str | None, int, int]:
    """The view that decided a probe's looks (its last measured look's; None when it had
    none), how many of its looks the views disagreed on, and how many measured looks it had."""
    looks = _looks(observations)
    view = looks[-1].view if looks else None
    return view, sum(1 for o in looks if _disagrees(o)), len(looks)


def look_views(
    target: Mapping[str, Any], observations: Mapping[str, Sequence[ObservationRow]]
) -> LookViews:
    """The run's looks by view, from the target it recorded and the stored looks."""
    tallies = [probe_views(rows) for rows in observations.values()]
    return look_views_of(target, ((looks, disagreeing) for _, disagreeing, looks in tallies))


def look_views_of(target: Mapping[str, Any], probes: Iterable[tuple[int, int]]) -> LookViews:
    """The run's looks by view, from the target it recorded and, per probe, its measured looks
    and the looks the views disagreed on (:func:`probe_views`)."""
    given = target.get("observer")
    observer: dict[str, Any] = given if isinstance(given, dict) else {}
    named = bool(observer)
    looks = disagreements = disagreeing = 0
    for measured, disagreed in probes:
        looks += measured
        disagreements += disagreed
        disagreeing += disagreed > 0
    return LookViews(
        decided_by=View.OBSERVER.value if named else View.AUTHOR.value,
        observer=str(observer.get("kind")) if named else None,
        author_view_too=named and observer.get("author_view", True) is not False,
        looks=looks,
        disagreements=disagreements,
        probes_disagreeing=disagreeing,
    )


_AUTHOR_ONLY = N_(
    "Looks used the author's view: every status look was made with the author's own "
    "credentials, and no observer was configured. Platforms commonly keep removed content "
    "visible to its author (or hide a post from everyone but its author), so a removal the "
    "public sees may be counted here as a post still up. Name an observer on the target "
    "(anonymous, or a second account) to look as the public does."
)
_OBSERVERS = {
    "anonymous": N_(
        "Looks used an anonymous observer (logged-out requests): the observer's view decided "
        "every look, so a post removed for the public counts as removed and one the public "
        "still sees counts as up."
    ),
    "account": N_(
        "Looks used an observer account the platform cannot tie to the author: the observer's "
        "view decided every look, so a post removed for the public counts as removed and one "
        "the public still sees counts as up."
    ),
}
_BOTH_VIEWS = N_(
    "Each look was also made with the author's credentials: in %(disagreements)s of %(looks)s "
    "looks (%(probes)s probes) one view saw the post up and the other down; each probe's count "
    "is in its data."
)
_NEVER_EVIDENCE = N_("A fault or an unreadable answer in either view is never evidence.")


def views_line(views: LookViews, lang: Language | None = None) -> str:
    """The methodology's sentence on whose view decided the looks, in English (the model's) or
    in ``lang``."""
    say = lang.gettext if lang is not None else str
    if views.decided_by == View.AUTHOR:
        return say(_AUTHOR_ONLY)
    who = "anonymous" if views.observer == "anonymous" else "account"
    parts = [say(_OBSERVERS[who])]
    if views.author_view_too:
        parts.append(
            say(_BOTH_VIEWS)
            % {
                "disagreements": views.disagreements,
                "looks": views.looks,
                "probes": views.probes_disagreeing,
            }
        )
    return " ".join([*parts, say(_NEVER_EVIDENCE)])
