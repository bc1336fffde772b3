"""The ledger is the record; everything else is derived from it.

:func:`check_derivation` reads every recorded answer that backs a measurement again, with the
very reader the adapter used live (the sandbox's readers, or the rules of the profile the run
recorded), and checks that what the store says follows from the ledger:

* every measured observation (accepted, rejected, visible, removed, gone, filed, withdrawn)
  says what the answer of its backing exchange says (the last exchange of the same action and
  probe inside the observation's time window: the attempt the adapter read);
* every measured look says the view the run's target asked for: the observer's where the
  target names one (read from the observer's request, action ``observe``), else the author's;
  and in a look made in both views the author's stored answer is what the author's request
  says;
* every probe's stored outcome is the one the engine's own rule (:func:`audit.engine.probe_facts`
  and :func:`audit.outcomes.classify`) gives from those observations;
* ``clock_start`` is the send time of the accepted attempt (the submission for proactive
  criteria, the notice or order for triggered ones; for a post found by lookup after a restart,
  the platform's own time of it), ``deadline_at`` is ``clock_start + deadline_s``, ``deadline_s``
  is the criterion's deadline at the run's time scale, and the post id is the one the answer gave;
* the text of a text probe is the text its recorded submissions sent (a value of the request
  body; for a profile, a value may hold it within a longer text its template made); a body that
  refers to the probe's text by digest must name the digest of the stored text, which is then
  put back in its places and checked the same way;
* the media of an image, speech or video probe is what its uploads delivered: every media
  digest the ledger records for the probe is the digest of the probe's file made again from its
  recipe (or read from its corpus file), and an accepted media probe shows its media taken.

Answers the ledger keeps only in part (bodies cut at the evidence limit) cannot be read again;
they are counted in a note, never taken as agreement or disagreement.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from audit.adapters.base import NoticeResult, StatusResult, SubmitResult, WithdrawResult
from audit.clock import utc_iso
from audit.durations import parse_duration
from audit.engine import filing_fate_unknown, probe_facts
from audit.errors import AuditError, InputError
from audit.evidence.ledger import body_with_text
from audit.http import Exchange
from audit.lifecycle import OBSERVE_ACTION, FilingResult, View, WithdrawalResult
from audit.media_file import media_file
from audit.outcomes import classify
from audit.probe import Probe
from audit.store import ExchangeRecord, ObservationRow, ProbeRow, RunRow
from audit.store_rows import sent_media

__all__ = [
    "Derivation",
    "Readers",
    "RunDerivation",
    "check_derivation",
    "exchange_from_entry",
    "readers_for",
]

_MEASURED = frozenset({"accepted", "rejected", "visible", "removed", "gone", "filed", "withdrawn"})
_SLACK = 1e-3  # seconds, as for :func:`audit.evidence.check_agreement`
_TIME_SLACK = 1e-6  # seconds: stored times are the recorded floats themselves
#: observation action -> the actions its exchanges may carry (a profile without an order
#: section files orders with its notice request)
_EXCHANGE_ACTIONS: dict[str, frozenset[str]] = {
    "resubmit": frozenset({"submit"}),
    "order": frozenset({"order", "notice"}),
}
_SUBMITS = frozenset({"submit", "resubmit", "lookup"})


def exchange_from_entry(entry: Mapping[str, Any]) -> Exchange | str:
    """The answer as the ledger recorded it, as an exchange a reader can read; or why it cannot
    be read again (its body was kept only in part)."""
    if entry.get("response_body_cut"):
        return "its answer is kept only in part in the ledger"
    text = entry.get("response_body", "")
    if not isinstance(text, str):
        return "its answer's body is not recorded"
    try:
        body = (
            base64.b64decode(text, validate=True)
            if entry.get("response_body_encoding") == "base64"
            else text.encode("utf-8")
        )
    except ValueError:
        return "its answer's body is not valid base64"
    status = entry.get("status")
    headers = entry.get("headers")
    return Exchange(
        status=status if isinstance(status, int) and not isinstance(status, bool) else None,
        headers={str(k): str(v) for k, v in headers.items()} if isinstance(headers, dict) else {},
        body=body,
        truncated=bool(entry.get("response_truncated")),
        error=entry.get("error") if isinstance(entry.get("error"), str) else None,
        started_at=_number(entry.get("started_at")),
        ended_at=_number(entry.get("ended_at")),
        attempts=int(_number(entry.get("attempt"))) or 1,
    )


def _number(value: Any) -> float:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0.0


@dataclass(frozen=True)
class Readers:
    """How one run's adapter reads answers: the same functions it used live."""

    submit: Callable[[Exchange, str], SubmitResult]  # the answer, the probe's modality
    lookup: Callable[[Exchange], SubmitResult | None]
    status: Callable[[Exchange], StatusResult]
    notice: Callable[[Exchange, str], NoticeResult]
    withdraw: Callable[[Exchange], WithdrawResult]
    observe: Callable[[Exchange], StatusResult] | None = None  # None: as ``status``

    def observed(self, exchange: Exchange) -> StatusResult:
        """A look's answer in the observer's view."""
        return (self.observe or self.status)(exchange)


def _sandbox_readers() -> Readers:
    from audit.adapters import sandbox

    return Readers(
        lambda exchange, _modality: sandbox.read_submit(exchange),
        sandbox.read_lookup,
        sandbox.read_status,
        lambda exchange, _kind: sandbox.read_notice(exchange),
        sandbox.read_withdraw,
    )


def _setup_values(profile: Any, records: Sequence[ExchangeRecord]) -> dict[str, str]:
    """Variables the profile's setup steps captured, read again from their recorded answers
    (the last answer of a setup request that yields all of a step's values)."""
    from audit.adapters.profile_match import extract_text

    answers = [r.entry for r in records if r.probe_id is None and r.entry.get("action") == "setup"]
    values: dict[str, str] = {}
    for step in profile.setup:
        for entry in reversed(answers):
            exchange = exchange_from_entry(entry)
            if isinstance(exchange, str) or not exchange.ok:
                continue
            body = exchange.json()
            found = {name: extract_text(expr, body) for name, expr in step.capture.items()}
            if all(value is not None for value in found.values()):
                values.update({k: v for k, v in found.items() if v is not None})
                break
    return values


def _profile_readers(run: RunRow, records: Sequence[ExchangeRecord]) -> Readers | str:
    from audit.adapters.profile_load import recorded_profile
    from audit.adapters.profile_read import ProfileReader

    try:
        profile = recorded_profile(run.profile)
    except InputError as exc:
        return str(exc)
    if profile is None:
        return "the run recorded no profile (it was made before runs recorded them)"
    variables = {n: v.default for n, v in profile.variables.items() if v.default is not None}
    variables.update(_setup_values(profile, records))
    given = run.target.get("variables")
    if isinstance(given, dict):
        variables.update({str(k): str(v) for k, v in given.items()})
    values = {f"vars.{k}": v for k, v in variables.items()}
    reader = ProfileReader(profile, lambda: values)
    return Readers(
        reader.read_submit,
        reader.read_lookup,
        reader.read_status,
        reader.read_notice,
        reader.read_withdraw,
        reader.read_observer_status,
    )


def readers_for(run: RunRow, records: Sequence[ExchangeRecord]) -> Readers | str:
    """The readers of the run's adapter, or why they cannot be rebuilt."""
    adapter = run.target.get("adapter", "sandbox")
    if adapter == "sandbox":
        return _sandbox_readers()
    if adapter == "profile":
        return _profile_readers(run, records)
    return f"unknown adapter {adapter!r}"


def _reread(readers: Readers, action: str, exchange: Exchange, modality: str) -> str | None:
    """The observation result the answer gives for ``action`` (None: no reader for it)."""
    if action == "status":
        return readers.status(exchange).state.value
    if action == OBSERVE_ACTION:
        return readers.observed(exchange).state.value
    if action in ("submit", "resubmit"):
        return readers.submit(exchange, modality).kind.value
    if action == "lookup":
        found = readers.lookup(exchange)
        return None if found is None else found.kind.value
    if action in ("notice", "order"):
        filed = readers.notice(exchange, action).filed
        return FilingResult.FILED if filed else FilingResult.FAILED
    if action == "withdraw":
        return (
            WithdrawalResult.WITHDRAWN
            if readers.withdraw(exchange).withdrawn
            else WithdrawalResult.FAILED
        )
    return None


@dataclass
class Derivation:
    """What reading the ledger again found."""

    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    reread: int = 0  # observations whose answer was read again and agrees
    unreadable: int = 0  # observations whose answer is kept only in part


class _Ledger:
    """A run's exchanges by probe, for finding the one an observation rests on."""

    def __init__(self, records: Sequence[ExchangeRecord]) -> None:
        self.of: dict[str, list[ExchangeRecord]] = {}
        for record in sorted(records, key=lambda r: r.seq):
            if record.probe_id is not None:
                self.of.setdefault(record.probe_id, []).append(record)

    def read(self, obs: ObservationRow) -> ExchangeRecord | None:
        """The exchange the adapter read for this observation: the last one of its action and
        probe inside its time window (retries come first, the answered attempt last)."""
        actions = _actions(obs)
        low, high = obs.started_at - _SLACK, obs.ended_at + _SLACK
        inside = [
            r
            for r in self.of.get(obs.probe_id, [])
            if r.entry.get("action") in actions
            and isinstance(r.entry.get("started_at"), int | float)
            and isinstance(r.entry.get("ended_at"), int | float)
            and r.entry["started_at"] >= low
            and r.entry["ended_at"] <= high
        ]
        return inside[-1] if inside else None

    def answers(
        self, obs: ObservationRow, actions: frozenset[str] | None = None
    ) -> list[ExchangeRecord]:
        """The answered attempt of each request inside the observation's window, latest first.
        Usually one; on a virtual clock the next request of the probe may start at the very
        instant this one ended, so its first attempt shares the window's edge."""
        actions = actions or _actions(obs)
        low, high = obs.started_at - _SLACK, obs.ended_at + _SLACK
        requests: list[ExchangeRecord] = []
        for r in self.of.get(obs.probe_id, []):
            started, ended = r.entry.get("started_at"), r.entry.get("ended_at")
            if r.entry.get("action") not in actions:
                continue
            if not isinstance(started, int | float) or not isinstance(ended, int | float):
                continue
            if started < low or ended > high:
                continue
            if requests and r.entry.get("attempt") != 1:
                requests[-1] = r  # a retry of the same request: its later attempt
            else:
                requests.append(r)
        return requests[::-1]

    def submissions(self, probe_id: str) -> Iterator[ExchangeRecord]:
        return (r for r in self.of.get(probe_id, []) if r.entry.get("action") == "submit")


def _actions(obs: ObservationRow) -> frozenset[str]:
    """The actions of the exchanges that decide an observation (a look in the observer's view:
    the observer's request)."""
    if obs.action == "status" and obs.view == View.OBSERVER:
        return frozenset({OBSERVE_ACTION})
    return _EXCHANGE_ACTIONS.get(obs.action, frozenset({obs.action}))


def _when(obs: ObservationRow) -> str:
    return _stamp(obs.started_at)


def _stamp(epoch: float | None) -> str:
    """A stored time for a message: ISO 8601 UTC, or the number as stored when it is no time
    a calendar holds (a damaged or forged record must be named, never crash the check)."""
    try:
        return utc_iso(epoch) or "none"
    except (ValueError, OverflowError, OSError):
        return f"{epoch!r} (not a valid time)"


def _answer(record: ExchangeRecord) -> str:
    status = record.entry.get("status")
    return f"HTTP {status}" if status is not None else "no answer"


class _Check:
    def __init__(self, run: RunRow, readers: Readers, ledger: _Ledger) -> None:
        self.run = run
        self.readers = readers
        self.ledger = ledger
        self.result = Derivation()
        self.modality: dict[str, str] = {}  # probe id -> modality, for reading its post

    def fail(self, probe_id: str, text: str) -> None:
        self.result.problems.append(f"probe {probe_id}: {text}")

    def observation(self, obs: ObservationRow) -> bool:
        """Whether a measured observation says what its recorded answer says (a look: in the
        view the target asked for, and in both views where it asked for both)."""
        if obs.action == "status" and not self.view(obs):
            return False
        observed = obs.action == "status" and obs.view == View.OBSERVER
        action = OBSERVE_ACTION if observed else obs.action
        what = " (observer view)" if observed else ""
        if not self._reads_as(obs, action, obs.result, self.ledger.answers(obs), what):
            return False
        if obs.author_result is None:
            return True
        authors = self.ledger.answers(obs, frozenset({"status"}))
        return self._reads_as(obs, "status", obs.author_result, authors, " (author view)")

    def _reads_as(
        self,
        obs: ObservationRow,
        action: str,
        stored: str,
        candidates: list[ExchangeRecord],
        what: str = "",
    ) -> bool:
        """Whether one of the answers read again gives what the store says."""
        if not candidates:
            if what:  # a look in the observer's view (or both) without that view's answer
                self.fail(obs.probe_id, f"the look at {_when(obs)}{what} has no recorded answer")
                return False
            return True  # no exchange at all: check_agreement names it
        record, said = candidates[0], None
        for candidate in candidates:
            exchange = exchange_from_entry(candidate.entry)
            if isinstance(exchange, str):
                self.result.unreadable += 1
                return True
            modality = self.modality.get(obs.probe_id, "text")
            reread = _reread(self.readers, action, exchange, modality)
            if reread is None or reread == stored:
                self.result.reread += 1
                return True
            if said is None:
                record, said = candidate, reread
        self.fail(
            obs.probe_id,
            f"the {obs.action} observation at {_when(obs)}{what} says '{stored}', but its "
            f"ledger entry {record.seq} ({_answer(record)}) says '{said}'",
        )
        return False

    def view(self, obs: ObservationRow) -> bool:
        """Whether a measured look was made in the view(s) the run's target asked for."""
        observer = self.run.target.get("observer")
        expected = View.OBSERVER if isinstance(observer, dict) else View.AUTHOR
        both = isinstance(observer, dict) and observer.get("author_view", True) is not False
        if obs.view != expected:
            self.fail(
                obs.probe_id,
                f"the look at {_when(obs)} is stored as made in the {obs.view}'s view, but the "
                f"run's target asked for the {expected.value}'s",
            )
            return False
        if both != (obs.author_result is not None):
            said = "with" if obs.author_result is not None else "without"
            self.fail(
                obs.probe_id,
                f"the look at {_when(obs)} is stored {said} the author's view, but the run's "
                f"target asked for {'both views' if both else 'the observer only'}",
            )
            return False
        return True

    def outcome(self, row: ProbeRow, observations: list[ObservationRow]) -> None:
        try:
            decided = classify(probe_facts(row, observations), observations).outcome
        except (AssertionError, ArithmeticError, TypeError, ValueError) as exc:
            self.fail(row.probe_id, f"its outcome cannot be derived from its records ({exc!r})")
            return
        derived = None if decided is None else decided.value
        if row.outcome == derived or (derived is None and row.outcome == "inconclusive"):
            return  # an outcome still open may be closed inconclusive by cleanup
        self.fail(
            row.probe_id,
            f"stored outcome '{row.outcome or 'pending'}', but its observations give "
            f"'{derived or 'pending'}'",
        )

    def clock(self, row: ProbeRow, observations: list[ObservationRow]) -> None:
        if row.clock_start is None:
            if row.deadline_at is not None:
                self.fail(row.probe_id, "deadline_at is set but clock_start is not")
            return
        self._deadline(row)
        if row.trigger == "proactive":
            starts = [o for o in observations if o.action in _SUBMITS and o.result == "accepted"]
            what = "accepted submission"
        else:
            starts = [o for o in observations if o.action == row.trigger and o.result == "filed"]
            what = f"filed {row.trigger}"
        if not starts:
            self.fail(row.probe_id, f"clock_start is set but no {what} is stored")
            return
        obs = starts[-1]
        record = self.ledger.read(obs)
        exchange = None if record is None else exchange_from_entry(record.entry)
        if record is None or not isinstance(exchange, Exchange):
            return  # no backing answer (named elsewhere) or one kept only in part
        # a filing sent again after an interruption starts the clock at the platform's time
        # of the first one (its answer carries it), as the engine does
        intents = [
            i
            for i, o in enumerate(observations[: observations.index(obs)])
            if o.action == obs.action and o.result == FilingResult.SENDING
        ]
        before = observations[: intents[-1]] if intents else []
        resent = filing_fate_unknown(before, obs.action) if row.trigger != "proactive" else False
        modality = str(row.probe.get("modality", "text"))
        expected, post_id = self._start(obs.action, exchange, modality, resent)
        if expected is None or abs(expected - row.clock_start) > _TIME_SLACK:
            self.fail(
                row.probe_id,
                f"clock_start {_stamp(row.clock_start)} is not the send time of the {what} "
                f"in ledger entry {record.seq} ({_stamp(expected) if expected else 'none'})",
            )
        if post_id is not None and row.post_id != post_id:
            self.fail(
                row.probe_id,
                f"post id {row.post_id!r} is not the {post_id!r} of ledger entry {record.seq}",
            )

    def _start(
        self, action: str, exchange: Exchange, modality: str, resent: bool = False
    ) -> tuple[float | None, str | None]:
        """When the deadline clock started by this answer, and the post id it gave."""
        if action in ("submit", "resubmit"):
            found = self.readers.submit(exchange, modality)
            return found.sent_at, found.post_id
        if action == "lookup":
            looked = self.readers.lookup(exchange)
            return (None, None) if looked is None else (looked.platform_time, looked.post_id)
        filed = self.readers.notice(exchange, action)
        return (filed.platform_time if resent else filed.sent_at), None

    def _deadline(self, row: ProbeRow) -> None:
        assert row.clock_start is not None
        if row.deadline_at is None or (
            abs(row.deadline_at - (row.clock_start + row.deadline_s)) > _TIME_SLACK
        ):
            self.fail(
                row.probe_id,
                f"deadline_at {_stamp(row.deadline_at)} is not clock_start + "
                f"{row.deadline_s:g} s ({_stamp(row.clock_start + row.deadline_s)})",
            )
        expected = _deadline_s(self.run, row.criterion_id)
        if expected is not None and abs(expected - row.deadline_s) > _TIME_SLACK:
            self.fail(
                row.probe_id,
                f"deadline_s {row.deadline_s:g} is not criterion {row.criterion_id}'s deadline "
                f"at the run's time scale ({expected:g})",
            )

    def text(self, row: ProbeRow) -> None:
        """A text probe's text is the text its recorded submissions sent."""
        text = row.probe.get("text")
        if row.probe.get("modality") != "text" or not isinstance(text, str) or not text:
            return
        # the sandbox posts the text as a field of its own; a profile's template may put it
        # inside a longer value
        exact = self.run.target.get("adapter", "sandbox") == "sandbox"
        for record in self.ledger.submissions(row.probe_id):
            entry = record.entry
            if "request_text_sha256" in entry:  # the body refers to the text by its digest
                body = body_with_text(entry, text)
                entry = {} if body is None else dict(entry, request_body=body)
            sent = _sent_strings(entry) if entry else set()
            if sent is not None and not any(
                value == text or (not exact and text in value) for value in sent
            ):
                self.fail(
                    row.probe_id,
                    f"its text is not the text ledger entry {record.seq} sent "
                    "(the probe's text was changed)",
                )
                return

    def media(self, row: ProbeRow, observations: Sequence[ObservationRow]) -> None:
        """A media probe's recorded uploads carry its own file (made again here from the
        probe's recipe or corpus file), and an accepted one shows its media delivered."""
        if row.probe.get("modality", "text") == "text":
            return
        delivered = {
            (record.seq, digest)
            for record in self.ledger.of.get(row.probe_id, [])
            if (digest := sent_media(record.entry)) is not None
        }
        accepted = any(o.action in _SUBMITS and o.result == "accepted" for o in observations)
        if accepted and not delivered:
            self.fail(row.probe_id, "it was accepted, but no ledger entry shows its media taken")
        if not delivered:
            return
        try:
            made = media_file(Probe.model_validate(row.probe))
        except (AuditError, ValueError) as exc:
            self.result.notes.append(
                f"probe {row.probe_id}: its media could not be made again to check ({exc})"
            )
            return
        expected = made.sha256 if made is not None else None
        for seq, digest in sorted(delivered):
            if digest != expected:
                self.fail(
                    row.probe_id,
                    f"ledger entry {seq} delivered media {digest[:16]}..., which is not the "
                    "probe's own media",
                )
                return


def _sent_strings(entry: Mapping[str, Any]) -> set[str] | None:
    """Every string of a recorded JSON or form request body; None when not readable."""
    body = entry.get("request_body")
    if entry.get("request_body_cut") or entry.get("request_body_encoding", "utf-8") != "utf-8":
        return None
    if not isinstance(body, str) or not body:
        return None
    try:
        value = json.loads(body)
    except (ValueError, RecursionError):
        from urllib.parse import parse_qsl

        return {v for _, v in parse_qsl(body, keep_blank_values=True)}
    found: set[str] = set()
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            found.add(item)
        elif isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return found


def _deadline_s(run: RunRow, criterion_id: str) -> float | None:
    """The criterion's deadline at the run's time scale, from the pack recorded with the run."""
    criteria = run.pack.get("criteria")
    for criterion in criteria if isinstance(criteria, list) else []:
        if isinstance(criterion, dict) and criterion.get("id") == criterion_id:
            try:
                seconds = parse_duration(str(criterion.get("deadline")))
            except (ValueError, InputError):
                return None
            return seconds / float(run.time_scale) if run.time_scale else None
    return None


class RunDerivation:
    """The derivation check of one run, fed probe by probe (:meth:`probe`), so a run of any
    size is checked holding one probe's records at a time; :meth:`result` when all are fed.

    ``run_records`` are the run's ledger records made for no probe (a profile's setup
    requests, whose captured values its readers need); ``media_recorded`` is whether any
    record of the run carries media (a run made before media were recorded carries none)."""

    def __init__(
        self, run: RunRow, run_records: Sequence[ExchangeRecord], media_recorded: bool
    ) -> None:
        readers = readers_for(run, run_records)
        self._unread = readers if isinstance(readers, str) else None
        self._check = None if isinstance(readers, str) else _Check(run, readers, _Ledger([]))
        self._media_recorded = media_recorded
        self._media_probes = False

    def probe(
        self,
        row: ProbeRow,
        observations: Sequence[ObservationRow],
        records: Sequence[ExchangeRecord],
    ) -> None:
        """Check one probe: its observations (in the order made) and its ledger records."""
        check = self._check
        if check is None:
            return
        modality = str(row.probe.get("modality", "text"))
        self._media_probes = self._media_probes or modality != "text"
        check.modality = {row.probe_id: modality}
        check.ledger = _Ledger(records)
        rows = sorted(observations, key=lambda o: o.started_at)
        forged = [o for o in rows if o.result in _MEASURED and not check.observation(o)]
        check.text(row)
        if self._media_recorded:
            check.media(row, rows)
        check.clock(row, rows)
        if not forged:  # an outcome from forged observations is named by those already
            check.outcome(row, list(rows))

    def result(self) -> Derivation:
        if self._check is None:
            return Derivation(notes=[f"the recorded answers were not read again: {self._unread}"])
        found = self._check.result
        if not self._media_recorded and self._media_probes:
            found.notes.append(
                "the run's ledger records no media a request carried (a run made before media "
                "were recorded, or whose adapter sent none): its media probes' delivery was not "
                "checked, and its scorecard counts them apart, as media not shown delivered"
            )
        if found.unreadable:
            found.notes.append(
                f"{found.unreadable} observations rest on answers the ledger keeps only in part "
                "(bodies over its limit); they were not read again"
            )
        return found


def check_derivation(
    run: RunRow,
    probes: Sequence[ProbeRow],
    observations: Mapping[str, Sequence[ObservationRow]],
    records: Sequence[ExchangeRecord],
) -> Derivation:
    """Read the run's recorded answers again and check the store follows from them (the
    whole run in memory, as a bundle holds it; :class:`RunDerivation` probe by probe)."""
    by_probe: dict[str, list[ExchangeRecord]] = {}
    for record in sorted(records, key=lambda r: r.seq):
        if record.probe_id is not None:
            by_probe.setdefault(record.probe_id, []).append(record)
    derivation = RunDerivation(
        run,
        [r for r in records if r.probe_id is None],
        any("media" in r.entry for r in records),
    )
    for row in probes:
        derivation.probe(row, observations.get(row.probe_id, []), by_probe.get(row.probe_id, []))
    return derivation.result()
