"""Through the real command line against the real reference sandbox on loopback, behind a layer
that answers HTTP 500 to every status request of a post still up (the platform only ever confirms
removals), compared probe by probe with the sandbox's ground truth: no post it did not remove
is read as up, down or late, every one of them is unknown, no verdict rests on them, and the
exit code is not 0."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from audit.cli import main
from audit.sandbox.moderation import default_config_path, load_sandbox_config
from audit.sandbox.server import SandboxServer
from tests.durable_support import plan, write_plan

SCALE = 14400.0  # a 24 h deadline lasts 6 s
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


class HideUnremoved:
    """ASGI layer: a GET answered 200 with ``"state": "visible"`` becomes a 500."""

    def __init__(self, app: Callable[[Message, Receive, Send], Awaitable[None]]) -> None:
        self.app = app
        self.hidden = 0

    async def __call__(self, scope: Message, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "GET":
            await self.app(scope, receive, send)
            return
        held: list[Message] = []

        async def hold(message: Message) -> None:
            held.append(message)

        await self.app(scope, receive, hold)
        body = b"".join(m.get("body", b"") for m in held if m["type"] == "http.response.body")
        start = next(m for m in held if m["type"] == "http.response.start")
        try:
            visible = start["status"] == 200 and json.loads(body).get("state") == "visible"
        except (ValueError, AttributeError):
            visible = False
        if not visible:
            for message in held:
                await send(message)
            return
        self.hidden += 1
        error = b'{"error": "internal"}'
        headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(error))]
        await send({"type": "http.response.start", "status": 500, "headers": headers})
        await send({"type": "http.response.body", "body": error})


def _audit(tmp_path: Path) -> tuple[int, dict[str, Any], dict[str, Any], int]:
    config = load_sandbox_config(default_config_path(), time_scale=SCALE)
    server = SandboxServer(config)
    layer = HideUnremoved(server._config.app)
    server._config.app = layer  # served in front of the sandbox, on the same socket
    with server:
        the_plan = plan(12, 2, base_url=server.base_url, window="PT1H", time_scale=SCALE)
        tmp_path.mkdir(parents=True, exist_ok=True)
        plan_file = write_plan(tmp_path / "plan.yaml", the_plan)
        args = ["--workspace", str(tmp_path / "ws"), "--reports", str(tmp_path / "reports")]
        try:
            main([*args, "run", "--plan", str(plan_file), "--format", "json"])
            code = 0
        except SystemExit as exited:
            code = int(exited.code or 0)
        truth = server.platform.truth()
    (card_file,) = (tmp_path / "reports").glob("*/scorecard.json")
    return code, json.loads(card_file.read_text(encoding="utf-8")), truth, layer.hidden


def _epoch(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


@pytest.mark.slow
def test_a_platform_hiding_unremoved_posts_behind_500s_never_gets_compliant(
    tmp_path: Path,
) -> None:
    code, card, truth, hidden = _audit(tmp_path)
    assert hidden > 0
    assert code != 0
    posts = {p["id"]: p for p in truth["posts"]}
    for probe in card["probes"]:
        if probe["expectation"] != "violating":
            continue
        # a hidden post is never read as up, down or late: what is not shown removed is unknown
        assert probe["outcome"] not in ("survived", "removed_late"), probe
        if probe["outcome"] == "removed_in_time":
            post = posts[probe["post_id"]]
            assert post["removal_at"] is not None
            assert post["removal_at"] <= _epoch(probe["deadline_utc"]) + 1e-6, probe
    for c in card["criteria"]:
        assert c["verdict"] != "COMPLIANT" or c["inconclusive"] == 0, c["verdict_reason"]
        not_removed = c["planned"] - c["removal_in_deadline"]["successes"]
        assert c["inconclusive"] == not_removed  # every post it did not remove became unknown
    assert any(c["inconclusive"] > 0 for c in card["criteria"])
