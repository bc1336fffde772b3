"""Reading a platform's answers with a profile's outcome rules: pure, no requests.

:class:`ProfileReader` turns one answer (a live :class:`~audit.http.Exchange`, or one rebuilt
from its ledger entry) into the adapter's result. The profile adapter reads every answer with
it, and ``verify`` reads the recorded answers again with the same rules (the profile recorded
with the run), so a stored observation that says something its answer does not is found.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from urllib.parse import urlencode

from audit.adapters.base import (
    NoticeResult,
    PostState,
    StatusResult,
    SubmitKind,
    SubmitResult,
    View,
    WithdrawResult,
    usable_post_id,
)
from audit.adapters.profile_match import extract_text, first_match, search
from audit.adapters.profile_model import LookupRule, NoticeSpec, Profile, SubmitRule, SubmitSpec
from audit.adapters.profile_template import Template, TemplateError
from audit.adapters.timestamps import platform_timestamp
from audit.http import Exchange

__all__ = ["ProfileReader", "encode_post_id"]


def encode_post_id(fields: Mapping[str, str]) -> str:
    if len(fields) == 1:
        return next(iter(fields.values()))
    return urlencode(list(fields.items()))


def _same_text(text: str) -> str:
    return text


class ProfileReader:
    """A profile's rules for reading answers. ``values`` gives the template values a post id
    may use (the profile's variables, known at the time of reading); ``scrub`` cleans the
    details quoted from answers."""

    def __init__(
        self,
        profile: Profile,
        values: Callable[[], Mapping[str, str]],
        scrub: Callable[[str], str] = _same_text,
    ) -> None:
        self.profile = profile
        self._values = values
        self._scrub = scrub

    # details ------------------------------------------------------------------------------
    def describe(self, exchange: Exchange, prefix: str = "") -> str:
        return self._scrub(prefix + exchange.describe())

    def _rule_detail(self, expression: str | None, exchange: Exchange) -> str:
        if expression is None:
            return f"HTTP {exchange.status}"
        value = search(expression, exchange.json())
        if value is None:
            return f"HTTP {exchange.status}"
        text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        return self._scrub(text)

    # submissions ----------------------------------------------------------------------------
    def submit_spec(self, modality: str = "text") -> SubmitSpec | None:
        """How a probe of ``modality`` is posted (None: the profile cannot post it)."""
        if modality == "text":
            return self.profile.submit
        return next((s for m, s in self.profile.media.items() if m == modality), None)

    def post_id(self, exchange: Exchange, submit: SubmitSpec | None = None) -> str | None:
        submit = submit or self.profile.submit
        body = exchange.json()
        captured: dict[str, str] = {}
        for name, expression in submit.capture.items():
            value = extract_text(expression, body)
            if value is None:
                return None
            captured[f"captured.{name}"] = value
        values = {**self._values(), **captured}
        try:
            fields = {n: Template.parse(t).render(values) for n, t in submit.post.items()}
        except TemplateError:
            return None
        if not all(fields.values()):
            return None
        return usable_post_id(encode_post_id(fields))

    def created_at(self, exchange: Exchange, submit: SubmitSpec | None = None) -> float | None:
        submit = submit or self.profile.submit
        if submit.created_at is None:
            return None
        return platform_timestamp(
            search(submit.created_at, exchange.json()), submit.created_at_unit
        )

    def read_submission(
        self,
        rules: Sequence[SubmitRule | LookupRule],
        exchange: Exchange,
        submit: SubmitSpec | None = None,
    ) -> SubmitResult:
        if not exchange.ok:
            return SubmitResult(SubmitKind.ERROR, detail=self.describe(exchange))
        rule = first_match(rules, exchange)
        if rule is None:
            detail = self.describe(exchange, "answer matches no rule: ")
            return SubmitResult(SubmitKind.ERROR, detail=detail)
        if rule.result == "accepted":
            post_id = self.post_id(exchange, submit)
            if post_id is None:
                detail = self.describe(exchange, "accepted, but the post id cannot be read: ")
                return SubmitResult(SubmitKind.ERROR, detail=detail)
            return SubmitResult(
                SubmitKind.ACCEPTED,
                post_id=post_id,
                sent_at=exchange.started_at,
                platform_time=self.created_at(exchange, submit),
            )
        detail = self._rule_detail(rule.detail, exchange)
        if rule.result == "rejected":
            return SubmitResult(SubmitKind.REJECTED, detail=detail)
        if rule.result == "not_found":
            return SubmitResult(
                SubmitKind.ERROR, detail=f"not found: never reached the platform ({detail})"
            )
        return SubmitResult(SubmitKind.ERROR, detail=detail)

    def read_submit(self, exchange: Exchange, modality: str = "text") -> SubmitResult:
        """The answer to the post of a probe of ``modality`` (its media post, for media)."""
        spec = self.submit_spec(modality)
        if spec is None:
            return SubmitResult(
                SubmitKind.ERROR, detail=f"the profile describes no way to post {modality} probes"
            )
        return self.read_submission(spec.outcomes, exchange, spec)

    def read_lookup(self, exchange: Exchange) -> SubmitResult | None:
        """None when the profile describes no lookup."""
        spec = self.profile.lookup
        if spec is None:
            return None
        # a lookup's own send time says nothing of when the platform accepted the post
        found = self.read_submission(spec.outcomes, exchange)
        return SubmitResult(
            found.kind, found.post_id, found.detail, found.data, None, found.platform_time
        )

    # looks, filings, withdrawals --------------------------------------------------------------
    def read_status(self, exchange: Exchange) -> StatusResult:
        if not exchange.ok:
            return StatusResult(PostState.ERROR, self.describe(exchange))
        rule = first_match(self.profile.status.outcomes, exchange)
        if rule is None:
            return StatusResult(PostState.UNKNOWN, self.describe(exchange, "matches no rule: "))
        return StatusResult(PostState(rule.result), self._rule_detail(rule.detail, exchange))

    def read_observer_status(self, exchange: Exchange) -> StatusResult:
        """A look made as the observer, with the profile's observer_status rules (or its
        status rules when it gives none)."""
        spec = self.profile.observer_status or self.profile.status
        if not exchange.ok:
            return StatusResult(PostState.ERROR, self.describe(exchange), View.OBSERVER)
        rule = first_match(spec.outcomes, exchange)
        if rule is None:
            detail = self.describe(exchange, "matches no rule: ")
            return StatusResult(PostState.UNKNOWN, detail, View.OBSERVER)
        detail = self._rule_detail(rule.detail, exchange)
        return StatusResult(PostState(rule.result), detail, View.OBSERVER)

    def notice_spec(self, kind: str) -> tuple[NoticeSpec | None, str]:
        """The request section a notice (or an order) is filed with, and its name."""
        if kind == "order" and self.profile.order is not None:
            return self.profile.order, "order"
        return self.profile.notice, "notice"

    def read_notice(self, exchange: Exchange, kind: str) -> NoticeResult:
        spec, _ = self.notice_spec(kind)
        if spec is None:
            return NoticeResult(False, detail="the profile describes no notice request")
        rule = first_match(spec.outcomes, exchange)
        if rule is None or rule.result != "filed":
            return NoticeResult(False, detail=self.describe(exchange))
        reference = None
        if rule.reference is not None:
            reference = extract_text(rule.reference, exchange.json())
        return NoticeResult(True, reference, f"HTTP {exchange.status}", exchange.started_at)

    def read_withdraw(self, exchange: Exchange) -> WithdrawResult:
        rule = first_match(self.profile.withdraw.outcomes, exchange)
        if rule is None or rule.result != "withdrawn":
            return WithdrawResult(False, self.describe(exchange))
        return WithdrawResult(True, f"HTTP {exchange.status}")
