"""An adapter driven by a target profile: a platform's API described in YAML, no Python.

The profile (:mod:`profile_model`) says what to send and how to read the answers; this module
sends through :class:`audit.http.PlatformClient` and applies the first matching rule. Like every
adapter it collects and never judges: an answer no rule matches is ``error`` (submission) or
``unknown`` (status), kept with the response, never a removal. Methods return, never raise.

A post is identified by the fields of the profile's ``submit.post`` (e.g. a Matrix room and
event). With one field the post id is that value; with several it is their URL-encoded form
(``room_id=...&event_id=...``), so a later look needs nothing but the stored post id.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any
from urllib.parse import parse_qsl

import httpx

from audit.adapters.base import (
    NOT_FOUND,
    OBSERVE_ACTION,
    EvidenceLedgerSink,
    NoticeResult,
    PostState,
    StatusResult,
    SubmitKind,
    SubmitResult,
    View,
    WithdrawResult,
    both_views,
    made_media,
)
from audit.adapters.profile_auth import (
    Authenticator,
    AuthFailure,
    NoAuthenticator,
    build_authenticator,
)
from audit.adapters.profile_load import check_target, target_variables
from audit.adapters.profile_match import extract_text, first_match, matches
from audit.adapters.profile_model import (
    CheckStep,
    LookupRule,
    MediaSubmitSpec,
    Profile,
    RequestSpec,
    StatusSpec,
    SubmitRule,
    UploadSpec,
    rate_per_second,
)
from audit.adapters.profile_read import ProfileReader, encode_post_id
from audit.adapters.profile_request import SecretScrubber, render_request
from audit.adapters.profile_template import Template, TemplateError, tree_references
from audit.clock import Clock
from audit.durations import parse_duration
from audit.http import Exchange, PlatformClient, RetryPolicy, SendGate
from audit.media_file import MediaFile
from audit.packs import Modality
from audit.plan import Observer, Target
from audit.probe import Probe

__all__ = ["ProfileAdapter", "build_profile_adapter", "decode_post_id", "encode_post_id"]

DETAIL_LIMIT = 500


class _Fault(Exception):
    """A request could not be made or read; the message is the result's detail."""


def decode_post_id(post_id: str, names: Sequence[str]) -> dict[str, str]:
    if len(names) == 1:
        return {names[0]: post_id}
    try:
        fields = dict(parse_qsl(post_id, keep_blank_values=True, strict_parsing=True))
    except ValueError:
        fields = {}
    if sorted(fields) != sorted(names):
        raise _Fault(f"post id {post_id!r} does not have the profile's fields {', '.join(names)}")
    return fields


def _request_names(spec: RequestSpec) -> set[str]:
    names = set(Template.parse(spec.path).references)
    texts = [*spec.query.values(), *spec.headers.values(), *(spec.form or {}).values()]
    for part in (spec.multipart or {}).values():
        texts += [part] if isinstance(part, str) else [part.filename, part.type]
    for text in texts:
        names.update(Template.parse(text).references)
    names.update(tree_references(spec.body))
    return names


class ProfileAdapter:
    """One platform, reached through the API its profile describes."""

    def __init__(
        self,
        profile: Profile,
        client: PlatformClient,
        clock: Clock,
        variables: Mapping[str, str],
        secrets: Mapping[str, str],
        scrubber: SecretScrubber,
        own_rates: frozenset[str] = frozenset(),
        observer: Observer | None = None,
    ) -> None:
        """``own_rates``: sections whose rate limit the plan's target sets (the HTTP client
        applies it), so the profile's own limit for them is not applied as well. ``observer``:
        the target's observer, who makes the looks (with the profile's observer_auth)."""
        self.profile = profile
        self._observer = observer
        self.name = f"profile:{profile.name}"
        self.supports_idempotency = profile.idempotent
        self.withdraw_removed = profile.withdraw_removed
        self.notice_idempotent = False  # a profile's filing is never sent twice
        self._client = client
        self._clock = clock
        self._vars = dict(variables)
        self._secrets = dict(secrets)
        self._scrubber = scrubber
        #: reads every answer; verify reads the recorded answers again with the same rules
        self.reader = ProfileReader(profile, lambda: self._values({}), self._scrub)
        values = self._values({})
        self._auth: dict[str, Authenticator] = {"none": NoAuthenticator()}
        self._auth["author"] = build_authenticator(profile.auth, client, values, clock, scrubber)
        if profile.notifier_auth is not None:
            self._auth["notifier"] = build_authenticator(
                profile.notifier_auth, client, values, clock, scrubber
            )
        if profile.observer_auth is not None:
            self._auth["observer"] = build_authenticator(
                profile.observer_auth, client, values, clock, scrubber
            )
        self._limiters = {
            section: client.limiter(f"section {section}", rate_per_second(spec.rate_limit))
            for section, spec in self._requests().items()
            if spec.rate_limit is not None and section not in own_rates
        }
        captured = {f"vars.{name}" for step in profile.setup for name in step.capture}
        self._needs_setup = {
            section for section, spec in self._requests().items() if _request_names(spec) & captured
        }
        if any(_request_names(m.request) & captured for m in profile.media.values()):
            self._needs_setup.add("submit")
        if profile.preflight:
            self._needs_setup.update({"submit", "lookup"})
        self._setup_lock = asyncio.Lock()
        self._setup_error: str | None = None
        self._checked = False

    def _requests(self) -> dict[str, RequestSpec]:
        p = self.profile
        # every media post shares the submit section's limits; uploads have their own
        sections: dict[str, Any] = {
            **{f"upload.{m}": s.upload for m, s in p.media.items() if s.upload is not None},
            **{
                f"processing.{m}": s.upload.ready
                for m, s in p.media.items()
                if s.upload is not None and s.upload.ready is not None
            },
            "submit": p.submit,
            "lookup": p.lookup,
            "status": p.status,
            "notice": p.notice,
            "order": p.order,
            "withdraw": p.withdraw,
        }
        found = {name: s.request for name, s in sections.items() if s is not None}
        if self._observer is not None:
            found[OBSERVE_ACTION] = self._observer_spec().request
        return found

    def _observer_spec(self) -> StatusSpec:
        """How the observer looks: the profile's observer_status, or its status request made
        with the observer's credentials."""
        spec = self.profile.observer_status
        if spec is not None:
            return spec
        status = self.profile.status
        return status.model_copy(
            update={"request": status.request.model_copy(update={"auth": "observer"})}
        )

    # values and details ------------------------------------------------------------------
    def _values(self, extra: Mapping[str, str]) -> dict[str, str]:
        values = {f"vars.{k}": v for k, v in self._vars.items()}
        values.update({f"secrets.{k}": v for k, v in self._secrets.items()})
        values.update(extra)
        return values

    def _scrub(self, text: str) -> str:
        clean = self._scrubber.text(text)
        return clean if len(clean) <= DETAIL_LIMIT else clean[: DETAIL_LIMIT - 3] + "..."

    def _describe(self, exchange: Exchange, prefix: str = "") -> str:
        return self._scrub(prefix + exchange.describe())

    @staticmethod
    def _probe_values(probe: Probe, key: str) -> dict[str, str]:
        return {
            "probe.text": probe.text,
            "probe.language": probe.language,
            "probe.modality": probe.modality.value,
            "idempotency_key": key,
        }

    def _post_values(self, post_id: str, action: str) -> dict[str, str]:
        names = list(self.profile.submit.post)
        fields = decode_post_id(post_id, names)
        key = hashlib.sha256(f"{action}\x00{post_id}".encode()).hexdigest()[:24]
        values = {f"post.{name}": value for name, value in fields.items()}
        values.update({"post_id": post_id, "request_key": f"{action[0]}{key}"})
        return values

    # sending -----------------------------------------------------------------------------
    async def _exchange(
        self,
        section: str,
        spec: RequestSpec,
        extra: Mapping[str, str],
        probe_id: str | None,
        readable: Callable[[Exchange], bool] | None = None,
        media: MediaFile | None = None,
    ) -> Exchange:
        if section in self._needs_setup:
            await self._ensure_setup()
        try:
            rendered = render_request(spec, self._values(extra), media)
        except TemplateError as exc:
            raise _Fault(f"the profile's {section} request cannot be made: {exc}") from None
        limiter = self._limiters.get(section)
        if limiter is not None:
            await limiter.acquire()
        auth = self._auth[spec.auth]
        action = section.partition(".")[0]  # per-modality uploads share one action name
        try:
            headers = await auth.headers()
            send = (rendered, action, probe_id, readable, spec.attempts)
            exchange = await self._send(headers, *send)
            if exchange.status == 401 and auth.refreshable:
                auth.invalidate(headers)
                headers = await auth.headers()
                exchange = await self._send(headers, *send)
        except AuthFailure as exc:
            raise _Fault(self._scrub(str(exc))) from None
        return exchange

    async def _send(
        self,
        auth_headers: Mapping[str, str],
        rendered: Any,
        action: str,
        probe_id: str | None,
        readable: Callable[[Exchange], bool] | None,
        attempts: int | None,
    ) -> Exchange:
        return await self._client.request(
            rendered.method,
            rendered.path,
            action=action,
            probe_id=probe_id,
            json_body=rendered.json_body,
            data=rendered.form,
            content=rendered.content,
            files=rendered.files,
            headers={**rendered.headers, **auth_headers},
            timeout=rendered.timeout or self.profile.timeout,
            readable=readable,
            attempts=attempts,
            media=rendered.media,
        )

    async def _ensure_setup(self) -> None:
        """Setup steps whose variables are missing, then preflight checks; once."""
        async with self._setup_lock:
            if self._setup_error is not None:
                raise _Fault(self._setup_error)
            steps: list[tuple[str, str, CheckStep]] = [
                (f"setup step '{s.name}'", "setup", s)
                for s in self.profile.setup
                if not all(name in self._vars for name in s.capture)
                and (self._observer is not None or not s.only_with_observer)
            ]
            if not self._checked:
                steps += [
                    (f"preflight check '{c.name}'", "preflight", c)
                    for c in self.profile.preflight
                    if self._observer is not None or not c.only_with_observer
                ]
            for what, section, step in steps:
                try:
                    await self._run_step(section, step)
                except _Fault as exc:
                    self._setup_error = f"{what} failed: {exc}"
                    raise _Fault(self._setup_error) from None
            self._checked = True

    async def _run_step(self, section: str, step: CheckStep) -> None:
        exchange = await self._exchange(section, step.request, {}, None)
        if not exchange.ok or not matches(step.expect, exchange):
            raise _Fault(self._describe(exchange))
        body = exchange.json()
        for name, expression in getattr(step, "capture", {}).items():
            value = extract_text(expression, body)
            if value is None:
                raise _Fault(f"no value for '{name}' at {expression!r} in the answer")
            self._vars[name] = value

    # the adapter protocol ----------------------------------------------------------------
    async def submit(self, probe: Probe, idempotency_key: str) -> SubmitResult:
        if probe.modality is not Modality.TEXT:
            return await self._submit_media(probe, idempotency_key)
        spec = self.profile.submit
        values = self._probe_values(probe, idempotency_key)
        # an unreadable answer is sent again only where the platform de-duplicates by key
        readable = self._readable_submission(spec.outcomes) if self.supports_idempotency else None
        try:
            exchange = await self._exchange(
                "submit", spec.request, values, probe.probe_id, readable
            )
        except _Fault as exc:
            return SubmitResult(SubmitKind.ERROR, detail=str(exc))
        return self.reader.read_submit(exchange)

    async def _submit_media(self, probe: Probe, idempotency_key: str) -> SubmitResult:
        """Upload the media where the profile says so (and wait until it is processed), then
        post. A failed upload means no post was made: the result says it never reached the
        platform, so the engine may try again later."""
        modality = probe.modality.value
        spec = self.reader.submit_spec(modality)
        if not isinstance(spec, MediaSubmitSpec):
            return SubmitResult(
                SubmitKind.ERROR, detail=f"the profile describes no way to post {modality} probes"
            )
        media = await made_media(probe)
        if isinstance(media, SubmitResult):
            return media
        values = {**self._probe_values(probe, idempotency_key), **media.template_values()}
        try:
            if spec.upload is not None:
                values.update(await self._upload(spec.upload, modality, values, probe, media))
        except _Fault as exc:
            return SubmitResult(SubmitKind.ERROR, detail=f"{NOT_FOUND} (upload: {exc})")
        readable = self._readable_submission(spec.outcomes) if self.supports_idempotency else None
        try:
            exchange = await self._exchange(
                "submit", spec.request, values, probe.probe_id, readable, media
            )
        except _Fault as exc:
            return SubmitResult(SubmitKind.ERROR, detail=str(exc))
        return self.reader.read_submit(exchange, modality)

    async def _upload(
        self,
        upload: UploadSpec,
        modality: str,
        values: Mapping[str, str],
        probe: Probe,
        media: MediaFile,
    ) -> dict[str, str]:
        """The ``uploaded.NAME`` values of an accepted upload; _Fault when it is not."""
        section = f"upload.{modality}"
        exchange = await self._exchange(
            section, upload.request, values, probe.probe_id, None, media
        )
        if not exchange.ok or not matches(upload.expect, exchange):
            raise _Fault(self._describe(exchange))
        body = exchange.json()
        captured: dict[str, str] = {}
        for name, expression in upload.capture.items():
            value = extract_text(expression, body)
            if value is None:
                raise _Fault(f"no value for '{name}' at {expression!r} in the answer")
            captured[f"uploaded.{name}"] = value
        if upload.ready is not None:
            await self._wait_ready(upload, modality, {**values, **captured}, probe.probe_id)
        return captured

    async def _wait_ready(
        self, upload: UploadSpec, modality: str, values: Mapping[str, str], probe_id: str
    ) -> None:
        """Look at the upload until the platform says it is processed, within its time."""
        ready = upload.ready
        assert ready is not None
        every, give_up = (
            parse_duration(ready.every),
            self._clock.now() + parse_duration(ready.within),
        )
        while True:
            section = f"processing.{modality}"
            exchange = await self._exchange(section, ready.request, values, probe_id)
            if exchange.ok and matches(ready.until, exchange):
                return
            if not (exchange.ok and matches(ready.pending, exchange)):
                raise _Fault(self._describe(exchange, "processing: "))
            if self._clock.now() + every > give_up:
                raise _Fault(f"the platform had not processed the media within {ready.within}")
            await self._clock.sleep_until(self._clock.now() + every)

    def _readable_submission(
        self, rules: Sequence[SubmitRule | LookupRule]
    ) -> Callable[[Exchange], bool]:
        def readable(exchange: Exchange) -> bool:
            result = self.reader.read_submission(rules, exchange)
            return result.kind is not SubmitKind.ERROR or result.detail.startswith("not found")

        return readable

    async def lookup(self, probe: Probe, idempotency_key: str) -> SubmitResult | None:
        spec = self.profile.lookup
        if spec is None:
            return None
        values = self._probe_values(probe, idempotency_key)
        readable = self._readable_submission(spec.outcomes)
        try:
            exchange = await self._exchange(
                "lookup", spec.request, values, probe.probe_id, readable
            )
        except _Fault as exc:
            return SubmitResult(SubmitKind.ERROR, detail=str(exc))
        return self.reader.read_lookup(exchange)

    async def _look(self, section: str, spec: StatusSpec, post_id: str, probe_id: str) -> Exchange:
        rules = spec.outcomes
        values = self._post_values(post_id, "status")
        return await self._exchange(
            section, spec.request, values, probe_id, lambda e: first_match(rules, e) is not None
        )

    async def status(self, post_id: str, probe_id: str) -> StatusResult:
        if self._observer is not None:
            return await self._observed(post_id, probe_id, self._observer.author_view)
        return await self._look_as("status", post_id, probe_id)

    async def _observed(self, post_id: str, probe_id: str, author_view: bool) -> StatusResult:
        """A look as the observer, and at the same time as the author with ``author_view`` (so
        that a removal between two requests seldom parts the views)."""
        observed = self._look_as(OBSERVE_ACTION, post_id, probe_id)
        if not author_view:
            return await observed
        seen, author = await asyncio.gather(observed, self._look_as("status", post_id, probe_id))
        return both_views(seen, author)

    async def _look_as(self, section: str, post_id: str, probe_id: str) -> StatusResult:
        """One look in one view: ``observe`` (the observer's) or ``status`` (the author's)."""
        observer = section == OBSERVE_ACTION
        spec = self._observer_spec() if observer else self.profile.status
        try:
            exchange = await self._look(section, spec, post_id, probe_id)
        except _Fault as exc:
            return StatusResult(
                PostState.ERROR, str(exc), View.OBSERVER if observer else View.AUTHOR
            )
        if observer:
            return self.reader.read_observer_status(exchange)
        return self.reader.read_status(exchange)

    async def notice(self, post_id: str, probe: Probe, reason: str, kind: str) -> NoticeResult:
        spec, section = self.reader.notice_spec(kind)
        if spec is None:
            return NoticeResult(False, detail="the profile describes no notice request")
        try:
            values = self._post_values(post_id, section)
            values.update(self._probe_values(probe, probe.probe_id), reason=reason, kind=kind)
            rules = spec.outcomes
            exchange = await self._exchange(
                section,
                spec.request,
                values,
                probe.probe_id,
                lambda e: first_match(rules, e) is not None,
            )
        except _Fault as exc:
            return NoticeResult(False, detail=str(exc))
        return self.reader.read_notice(exchange, kind)

    async def withdraw(self, post_id: str, probe_id: str) -> WithdrawResult:
        spec = self.profile.withdraw
        try:
            values = self._post_values(post_id, "withdraw")
            exchange = await self._exchange("withdraw", spec.request, values, probe_id)
        except _Fault as exc:
            return WithdrawResult(False, str(exc))
        return self.reader.read_withdraw(exchange)

    async def preflight(self) -> str | None:
        """The profile's setup steps and preflight checks, before any probe is sent."""
        try:
            await self._ensure_setup()
        except _Fault as exc:
            return str(exc)
        return None

    async def aclose(self) -> None:
        await self._client.aclose()


def _min_rate(*rates: float | None) -> float | None:
    given = [r for r in rates if r is not None]
    return min(given) if given else None


def build_profile_adapter(
    target: Target,
    clock: Clock,
    ledger: EvidenceLedgerSink,
    *,
    seed: int,
    transport: httpx.AsyncBaseTransport | None = None,
    profile: Profile | None = None,
    gate: SendGate | None = None,
) -> ProfileAdapter:
    """The adapter for a profile target (with ``profile``, the one the run recorded); raises
    InputError when the target does not fit."""
    profile = check_target(target, profile)
    secrets = target.secret_values()
    scrubber = SecretScrubber()
    scrubber.listen(ledger.redactor.add)  # every secret, once known, is cut from the ledger
    client = PlatformClient(
        target.base_url,
        clock,
        scrubber.sink(ledger.append),
        rate_limit=_min_rate(target.rate_limit, rate_per_second(profile.rate_limit)),
        timeout=profile.timeout or target.timeout,
        retry=RetryPolicy(attempts=profile.retry.attempts, reset_header=profile.retry.reset_header),
        verify_tls=target.verify_tls,
        actions=target.action_limits(),
        transport=transport,
        seed=seed,
        secrets=secrets.values(),
        gate=gate,
    )
    scrubber.listen(client.add_secret)  # and from answers, before the adapter reads them
    for value in secrets.values():
        scrubber.add(value)
    variables = target_variables(target, profile)
    own_rates = frozenset(n for n, a in target.actions.items() if a.rate_limit is not None)
    return ProfileAdapter(
        profile, client, clock, variables, secrets, scrubber, own_rates, target.observer
    )
