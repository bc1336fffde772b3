"""The model's values in words, as messages to translate: outcomes, and the triggers,
expectations, groups and states the scorecards name.

Plain data with no dependency but :mod:`audit.i18n`, so the scorecard's sentences and the
terminal summary can name a value as the pages do without loading a renderer.
"""

from __future__ import annotations

from audit.i18n import N_

__all__ = ["OUTCOME_LABELS", "WORDS"]

OUTCOME_LABELS = {
    "removed_in_time": N_("removed in time"),
    "rejected_at_submission": N_("refused at submission"),
    "removed_late": N_("removed late"),
    "survived": N_("not removed"),
    "inconclusive": N_("inconclusive"),
    "pending": N_("still watched"),
    "kept": N_("kept (control)"),
    "over_removed": N_("over-removed (control)"),
}
WORDS = {  # values of the model the scorecards name in words: triggers, expectations, groups
    "order": N_("order"),
    "notice": N_("notice"),
    "proactive": N_("proactive"),
    "violating": N_("violating"),
    "control": N_("control"),
    "text": N_("text"),
    "image": N_("image"),
    "speech": N_("speech"),
    "video": N_("video"),
    "language": N_("language"),
    "variant": N_("variant"),
    "modality": N_("modality"),
    "clean": N_("clean"),
    "complete": N_("complete"),
    "running": N_("running"),
    "failed": N_("failed"),
    "cancelled": N_("cancelled"),
    "sandbox": N_("sandbox"),
    "production": N_("production"),
    "puid": N_("puid"),
    "attributes": N_("attributes"),
}
