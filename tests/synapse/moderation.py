"""A small Synapse moderation module for the test homeserver.

Loaded by Synapse through its ``modules:`` config as ``moderation.ModerationModule`` (the harness
puts this folder, not ``tests/``, on Synapse's PYTHONPATH: ``tests/synapse`` would otherwise
shadow the real ``synapse`` package). It runs inside the Synapse process only.

Every ``m.room.message`` event whose ``content.body`` is a string is a candidate:

- body matches a ``reject_patterns`` regex: the send is refused with ``M_FORBIDDEN`` (403);
- else body matches a ``redact_patterns`` regex: the event is accepted, then redacted by
  ``moderator_user_id`` after ``redact_delay_seconds``; the moderator must be joined to the
  room with enough power to redact (the test arranges that);
- else the event is left alone.

One JSON line per decision is appended to ``log_path``::

    {"event_id", "room_id", "body_sha256", "decision", "at"}

``decision`` is ``"rejected"`` or ``"left"`` (``at`` = time of the send), ``"redacted"``
(``at`` = time the redaction was sent; the record also carries ``redaction_event_id``), or
``"redaction_failed"`` (with ``error``) if the moderator could not redact.

Config::

    reject_patterns: ["..."]
    redact_patterns: ["..."]
    redact_delay_seconds: 2.0
    moderator_user_id: "@moderator:audit.test"
    log_path: "/tmp/.../moderation.jsonl"
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from synapse.events import EventBase
from synapse.module_api import NOT_SPAM, ModuleApi
from synapse.module_api.errors import Codes, ConfigError

logger = logging.getLogger(__name__)

MESSAGE_EVENT_TYPE = "m.room.message"
REDACTION_EVENT_TYPE = "m.room.redaction"


@dataclass(frozen=True)
class ModerationConfig:
    reject_patterns: tuple[re.Pattern[str], ...]
    redact_patterns: tuple[re.Pattern[str], ...]
    redact_delay_seconds: float
    moderator_user_id: str
    log_path: Path


def _patterns(config: dict[str, Any], key: str) -> tuple[re.Pattern[str], ...]:
    raw = config.get(key, [])
    if not isinstance(raw, list) or not all(isinstance(p, str) for p in raw):
        raise ConfigError(f"'{key}' must be a list of regex strings (got {raw!r})", (key,))
    try:
        return tuple(re.compile(p) for p in raw)
    except re.error as exc:
        raise ConfigError(f"'{key}' has an invalid regex: {exc} (got {raw!r})", (key,)) from exc


def _required_str(config: dict[str, Any], key: str) -> str:
    value = config.get(key)
    if not isinstance(value, str) or not value:
        raise ConfigError(f"'{key}' must be a non-empty string (got {value!r})", (key,))
    return value


class ModerationModule:
    """Rejects or (later) redacts messages by pattern; logs every decision."""

    def __init__(self, config: ModerationConfig, api: ModuleApi) -> None:
        self._config = config
        self._api = api
        self._decided: set[str] = set()
        config.log_path.parent.mkdir(parents=True, exist_ok=True)
        api.register_spam_checker_callbacks(check_event_for_spam=self.check_event_for_spam)

    @staticmethod
    def parse_config(config: dict[str, Any]) -> ModerationConfig:
        delay = config.get("redact_delay_seconds", 2.0)
        if isinstance(delay, bool) or not isinstance(delay, int | float) or delay < 0:
            raise ConfigError(
                f"'redact_delay_seconds' must be a number >= 0 (got {delay!r})",
                ("redact_delay_seconds",),
            )
        moderator = _required_str(config, "moderator_user_id")
        if not moderator.startswith("@") or ":" not in moderator:
            raise ConfigError(
                f"'moderator_user_id' must be a Matrix user id like '@mod:server' "
                f"(got {moderator!r})",
                ("moderator_user_id",),
            )
        return ModerationConfig(
            reject_patterns=_patterns(config, "reject_patterns"),
            redact_patterns=_patterns(config, "redact_patterns"),
            redact_delay_seconds=float(delay),
            moderator_user_id=moderator,
            log_path=Path(_required_str(config, "log_path")),
        )

    async def check_event_for_spam(self, event: EventBase) -> Literal["NOT_SPAM"] | Codes:
        body = self._probe_body(event)
        if body is None:
            return NOT_SPAM
        decision = self._decide(body)
        if event.event_id not in self._decided:  # act and log once per event
            self._decided.add(event.event_id)
            self._act(event, body, decision)
        return Codes.FORBIDDEN if decision == "rejected" else NOT_SPAM

    def _decide(self, body: str) -> Literal["rejected", "redact", "left"]:
        if any(p.search(body) for p in self._config.reject_patterns):
            return "rejected"
        if any(p.search(body) for p in self._config.redact_patterns):
            return "redact"
        return "left"

    def _act(self, event: EventBase, body: str, decision: str) -> None:
        digest = hashlib.sha256(body.encode("utf-8")).hexdigest()
        if decision != "redact":
            self._log(event.event_id, event.room_id, digest, decision)
            return
        self._api.delayed_background_call(
            self._config.redact_delay_seconds * 1000,
            self._redact,
            event.event_id,
            event.room_id,
            digest,
            desc="audit_test_moderation_redact",
        )

    @staticmethod
    def _probe_body(event: EventBase) -> str | None:
        """The body of a plain message event, or None for anything that is not a probe."""
        if event.type != MESSAGE_EVENT_TYPE or event.is_state():
            return None
        body = event.content.get("body")
        return body if isinstance(body, str) else None

    async def _redact(self, event_id: str, room_id: str, digest: str) -> None:
        moderator = self._config.moderator_user_id
        try:
            redaction = await self._api.create_and_send_event_into_room(
                {
                    "type": REDACTION_EVENT_TYPE,
                    "room_id": room_id,
                    "sender": moderator,
                    # Room versions >= 11 carry `redacts` in content; older ones at top level.
                    # Synapse's event builder drops the top-level key where it does not belong.
                    "redacts": event_id,
                    "content": {"redacts": event_id, "reason": "moderation policy"},
                }
            )
        except Exception as exc:
            logger.exception("moderation: %s could not redact %s", moderator, event_id)
            self._log(event_id, room_id, digest, "redaction_failed", error=repr(exc))
            return
        self._log(event_id, room_id, digest, "redacted", redaction_event_id=redaction.event_id)

    def _log(self, event_id: str, room_id: str, digest: str, decision: str, **extra: str) -> None:
        record: dict[str, Any] = {
            "event_id": event_id,
            "room_id": room_id,
            "body_sha256": digest,
            "decision": decision,
            "at": time.time(),
            **extra,
        }
        line = json.dumps(record, sort_keys=True) + "\n"
        with self._config.log_path.open("a", encoding="utf-8") as log:
            log.write(line)
        logger.info("moderation: %s %s in %s", decision, event_id, room_id)
