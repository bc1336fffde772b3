"""The clock starts when the platform received the post, not when the tool meant to send it:
a real sandbox behind a real proxy on loopback that answers 429 (Retry-After: 1) to the first
three attempts of every submission. Every probe's deadline clock must start at the send time of
the attempt the platform accepted: no earlier than one round trip before the platform's own
creation time of the post, and never after it."""

from __future__ import annotations

import json
import subprocess
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx

from audit.sandbox.server import free_port
from audit.store import Store
from tests.durable_support import audit_command, plan, process_env, served_sandbox, write_plan

SCALE = 3600.0


@contextmanager
def throttling_proxy(upstream: str) -> Iterator[tuple[str, Counter[str]]]:
    """Forwards to ``upstream``; the first three POSTs of each idempotency key get a 429."""
    refused: Counter[str] = Counter()
    client = httpx.Client(base_url=upstream, timeout=30)
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def _forward(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length") or 0))
            key = self.headers.get("idempotency-key")
            if self.command == "POST" and self.path == "/api/v1/posts" and key:
                with lock:
                    throttle = refused[key] < 3
                    refused[key] += throttle
                if throttle:
                    payload = b'{"error": "rate_limited"}'
                    self.send_response(429)
                    self.send_header("retry-after", "1")
                    self.send_header("content-type", "application/json")
                    self.send_header("content-length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                    return
            headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
            answer = client.request(self.command, self.path, content=body, headers=headers)
            self.send_response(answer.status_code)
            for name, value in answer.headers.items():
                if name.lower() not in ("transfer-encoding", "content-length", "connection"):
                    self.send_header(name, value)
            self.send_header("content-length", str(len(answer.content)))
            self.end_headers()
            self.wfile.write(answer.content)

        do_GET = do_POST = do_DELETE = _forward  # noqa: N815 (the names http.server calls)

        def log_message(self, format: str, *args: object) -> None:
            del format, args

    server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", refused
    finally:
        server.shutdown()
        server.server_close()
        client.close()


def test_clock_starts_at_the_accepted_attempt_behind_a_throttling_proxy(tmp_path: Path) -> None:
    with served_sandbox(8, SCALE) as sandbox, throttling_proxy(sandbox.base_url) as (url, refused):
        the_plan = plan(4, 1, base_url=url, window="PT1H", time_scale=SCALE)
        the_plan = the_plan.model_copy(update={"criteria": ["VN-SUP-02"]})
        plan_file = write_plan(tmp_path / "plan.yaml", the_plan)
        command = audit_command(tmp_path / "ws", "--reports", str(tmp_path / "reports"))
        command += ["run", "--plan", str(plan_file), "--format", "json"]
        done = subprocess.run(
            command, env=process_env(), capture_output=True, text=True, timeout=300
        )
        truth = sandbox.truth()
    assert done.returncode in (0, 1, 3), done.stderr
    store = Store(tmp_path / "ws" / "audit.sqlite")
    (run,) = store.runs()
    created = {p["idempotency_key"]: p["created_at"] for p in truth["posts"]}
    accepted = {}
    for record in store.exchanges(run.run_id):
        entry = record.entry
        if entry["action"] == "submit" and entry["status"] == 201:
            accepted[record.probe_id] = entry
    rows = [r for r in store.probes(run.run_id) if r.probe_id in created]
    assert rows and all(refused[r.probe_id] == 3 for r in rows)  # three 429s each, waited out
    for row in rows:
        entry = accepted[row.probe_id]
        round_trip = entry["ended_at"] - entry["started_at"]
        assert row.clock_start is not None and row.submitted_at is not None
        assert row.clock_start - row.submitted_at >= 3.0  # the 429s are the tool's time
        assert row.clock_start <= created[row.probe_id] + 1e-3
        assert created[row.probe_id] - row.clock_start <= round_trip + 1e-3
    print(
        "throttling proxy:",
        json.dumps(
            {
                "probes": len(rows),
                "max_platform_minus_clock_s": round(
                    max(created[r.probe_id] - (r.clock_start or 0) for r in rows), 4
                ),
                "min_queued_s": round(
                    min((r.clock_start or 0) - (r.submitted_at or 0) for r in rows), 2
                ),
            }
        ),
    )
