"""The reference sandbox's statements of reasons, with configurable misreporting.

Every removal the simulated platform makes (before the author withdrew the post) gets one
statement of reasons, in the Transparency Database's fields (:mod:`audit.statements.schema`),
issued at the removal time. The honest statement follows the sandbox's ground truth:

- ``source_type``: SOURCE_ARTICLE_16 when a notice about the post was received before the
  removal, SOURCE_TYPE_OTHER_NOTIFICATION when the first was an order, else SOURCE_VOLUNTARY;
- ``automated_detection`` ``Yes`` and ``automated_decision`` FULLY for a removal with no notice
  or order before it (the simulated classifier), ``No`` and NOT_AUTOMATED after one (review);
- ``category``: the matched rule's category (``statements.categories``), else
  ``statements.default_category``; ``content_type`` from the post's modality; dates at day
  precision (UTC): ``content_date`` the post's creation, ``application_date`` the removal.

Misreporting (``statements`` in the sandbox configuration) draws, per post and from the sandbox
seed, whether its statement is missing, or has its automation flags, source type or category
falsified; ``GET /_sandbox/truth`` lists what was done to each (``statements``).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from audit.statements import schema

if TYPE_CHECKING:
    from audit.sandbox.moderation import PostRecord, SandboxConfig

__all__ = ["MISREPORTS", "StatementSettings", "issued_statements", "statement_truth"]

MISREPORTS = ("missing", "wrong_automation", "wrong_source", "wrong_category")
_CONTENT_TYPE = {
    "text": "CONTENT_TYPE_TEXT",
    "image": "CONTENT_TYPE_IMAGE",
    "speech": "CONTENT_TYPE_AUDIO",
}


class StatementSettings(BaseModel):
    """How the sandbox reports its decisions (never how it decides them)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    platform_name: str = "reference-sandbox"
    categories: dict[str, str] = Field(default_factory=dict)  # rule id -> DSA category
    default_category: str = "OTHER_VIOLATION_TC"
    territorial_scope: list[str] = Field(default_factory=lambda: sorted(schema.EEA_COUNTRIES))
    missing: float = Field(default=0.0, ge=0, le=1)
    wrong_automation: float = Field(default=0.0, ge=0, le=1)
    wrong_source: float = Field(default=0.0, ge=0, le=1)
    wrong_category: float = Field(default=0.0, ge=0, le=1)

    @field_validator("categories")
    @classmethod
    def _known_categories(cls, value: dict[str, str]) -> dict[str, str]:
        for category in value.values():
            _known(category)
        return value

    @field_validator("default_category")
    @classmethod
    def _known_default(cls, value: str) -> str:
        return _known(value)


def _known(category: str) -> str:
    if schema.category_value(category) not in schema.CATEGORIES:
        raise ValueError(
            f"must be a statement-of-reasons category such as SCAMS_AND_FRAUD (got {category!r})"
        )
    return category


def _day(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).date().isoformat()


def _decided(post: PostRecord, now: float) -> float | None:
    """When the post was removed, if it was, by now, before its author withdrew it."""
    removal = post.removal_at
    if removal is None or removal > now:
        return None
    if post.withdrawn_at is not None and post.withdrawn_at <= removal:
        return None
    return removal


def _honest(config: SandboxConfig, post: PostRecord, removal: float) -> dict[str, Any]:
    settings = config.statements
    before = [kind for kind, at in post.notices if at <= removal]
    category = settings.categories.get(post.rule or "", settings.default_category)
    if before:
        source = "SOURCE_ARTICLE_16" if before[0] == "notice" else "SOURCE_TYPE_OTHER_NOTIFICATION"
    return {
        "decision_visibility": ["DECISION_VISIBILITY_CONTENT_REMOVED"],
        "decision_ground": "DECISION_GROUND_INCOMPATIBLE_CONTENT",
        "incompatible_content_ground": f"Community rules, rule {post.rule or 'general'}",
        "incompatible_content_explanation": "The post breaks the platform's community rules.",
        "content_type": [_CONTENT_TYPE.get(post.modality, "CONTENT_TYPE_OTHER")],
        "category": schema.category_value(category),
        "territorial_scope": list(settings.territorial_scope),
        "content_date": _day(post.created_at),
        "application_date": _day(removal),
        "decision_facts": "Removed by the simulated platform's moderation.",
        "source_type": source if before else "SOURCE_VOLUNTARY",
        "automated_detection": "No" if before else "Yes",
        "automated_decision": (
            "AUTOMATED_DECISION_NOT_AUTOMATED" if before else "AUTOMATED_DECISION_FULLY"
        ),
        "puid": post.post_id,
    }


def _misreports(config: SandboxConfig, post: PostRecord) -> list[str]:
    from audit.sandbox.moderation import decision_stream

    rng = decision_stream(config.seed, f"statement\x00{post.idempotency_key or post.post_id}")
    settings = config.statements
    draws = {name: rng.random() for name in MISREPORTS}
    return [name for name in MISREPORTS if draws[name] < getattr(settings, name)]


def _falsified(honest: dict[str, Any], wrong: list[str]) -> dict[str, Any]:
    out = dict(honest)
    if "wrong_automation" in wrong:
        automated = honest["automated_detection"] == "Yes"
        out["automated_detection"] = "No" if automated else "Yes"
        out["automated_decision"] = (
            "AUTOMATED_DECISION_NOT_AUTOMATED" if automated else "AUTOMATED_DECISION_FULLY"
        )
    if "wrong_source" in wrong:
        voluntary = honest["source_type"] == "SOURCE_VOLUNTARY"
        out["source_type"] = "SOURCE_ARTICLE_16" if voluntary else "SOURCE_VOLUNTARY"
    if "wrong_category" in wrong:
        scam = schema.category_value("SCAMS_AND_FRAUD")
        out["category"] = (
            schema.category_value("ILLEGAL_OR_HARMFUL_SPEECH")
            if honest["category"] == scam
            else scam
        )
    return out


def _published(
    config: SandboxConfig, post: PostRecord, body: dict[str, Any], removal: float
) -> dict[str, Any]:
    stamp = datetime.fromtimestamp(removal, UTC).strftime("%Y-%m-%d %H:%M:%S")
    name = uuid.uuid5(uuid.NAMESPACE_URL, f"sandbox:{config.seed}:statement:{post.post_id}")
    return {
        **body,
        "uuid": str(name),
        "platform_name": config.statements.platform_name,
        "created_at": stamp,
    }


def issued_statements(
    config: SandboxConfig, posts: Iterable[PostRecord], now: float
) -> list[dict[str, Any]]:
    """The statements the platform has published by ``now``, as the API returns them."""
    issued = []
    for post in posts:
        removal = _decided(post, now)
        if removal is None:
            continue
        wrong = _misreports(config, post)
        if "missing" in wrong:
            continue
        body = _falsified(_honest(config, post, removal), wrong)
        issued.append(_published(config, post, body, removal))
    return issued


def statement_truth(
    config: SandboxConfig, posts: Iterable[PostRecord], now: float
) -> list[dict[str, Any]]:
    """For each decision so far: its puid, the honest statement and what was misreported."""
    truth = []
    for post in posts:
        removal = _decided(post, now)
        if removal is None:
            continue
        truth.append(
            {
                "post_id": post.post_id,
                "puid": post.post_id,
                "misreported": _misreports(config, post),
                "honest": _honest(config, post, removal),
            }
        )
    return truth
