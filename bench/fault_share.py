"""Faults decide nothing: a 24 h audit against the reference sandbox with 10 % of all requests
answered by a fault — a 503, a 200 whose JSON body is cut off, a connection refused — compared
probe by probe with the sandbox's ground truth.

Counts, among finished probes, the **false outcomes** (a removal the platform did not make, a
post "survived" or "kept" that the platform removed before the deadline or its last look, a
"removed in time" whose removal fell after the deadline) and the share left **inconclusive**,
with its causes. Goal: 0 false outcomes, inconclusive only where a decisive window could not be
recovered.

    python bench/fault_share.py [--probes 400] [--faults 0.10] [--seed 7]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
from benchlib import in_process_transport, load_average, machine, virtual_plan

from audit.clock import VirtualClock
from audit.runner import create_runs, execute_run
from audit.store import Store


class Faulty(httpx.AsyncBaseTransport):
    """Passes requests to the platform; a share of them gets a fault instead (a 200 whose body
    is cut off is sent after the platform acted, as a proxy dropping the connection would)."""

    def __init__(self, inner: httpx.AsyncBaseTransport, share: float, seed: int) -> None:
        self.inner, self.share, self.rng = inner, share, random.Random(seed)
        self.faults: Counter[str] = Counter()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self.rng.random() >= self.share:
            return await self.inner.handle_async_request(request)
        kind = self.rng.choice(["503", "truncated", "refused"])
        self.faults[kind] += 1
        if kind == "refused":
            raise httpx.ConnectError("connection refused", request=request)
        if kind == "503":
            return httpx.Response(503, headers={"retry-after": "1"})
        answered = await self.inner.handle_async_request(request)
        body = await answered.aread()
        return httpx.Response(
            answered.status_code,
            headers={"content-type": "application/json"},
            content=body[: max(1, len(body) // 2)],
        )


def _false(row: Any, post: dict[str, Any] | None) -> str | None:
    """Why this probe's outcome contradicts the platform's ground truth (None: it does not)."""
    if post is None or row.outcome in (None, "inconclusive", "rejected_at_submission"):
        return None
    removed = post["removal_at"]
    gone_before_withdrawal = removed is not None and (
        post["withdrawn_at"] is None or removed <= post["withdrawn_at"]
    )
    if row.outcome in ("removed_in_time", "removed_late", "over_removed"):
        if not gone_before_withdrawal:
            return "a removal the platform did not make"
        if row.outcome == "removed_in_time" and removed > row.deadline_at:
            return "in time, removed after the deadline"
        if row.outcome == "removed_late" and removed <= row.deadline_at:
            return "late, removed before the deadline"
    if row.outcome == "survived" and removed is not None and removed <= row.deadline_at:
        return "survived, removed before the deadline"
    if row.outcome == "kept" and gone_before_withdrawal:
        return "kept, removed before its last look"
    return None


def measure(probes: int, share: float, seed: int) -> dict[str, Any]:
    clock = VirtualClock()
    transport, app = in_process_transport(clock)
    faulty = Faulty(transport, share, seed)
    with tempfile.TemporaryDirectory() as folder:
        store = Store(Path(folder) / "audit.sqlite")
        (prepared,) = create_runs(store, virtual_plan(probes, seed=seed), None, clock)
        asyncio.run(execute_run(store, prepared.run_id, clock, transport=faulty))
        truth = app.state.platform.truth()  # type: ignore[attr-defined]
        posts = {p["idempotency_key"]: p for p in truth["posts"]}
        rows = store.probes(prepared.run_id)
        outcomes = Counter(r.outcome for r in rows)
        false = Counter(why for r in rows if (why := _false(r, posts.get(r.probe_id))) is not None)
        causes = Counter(r.note for r in rows if r.outcome == "inconclusive")
        store.close()
    return {
        "probes": probes,
        "fault_share": share,
        "faults": dict(faulty.faults),
        "outcomes": dict(outcomes),
        "false_outcomes": sum(false.values()),
        "false_by_kind": dict(false),
        "inconclusive_share": round(outcomes["inconclusive"] / len(rows), 4),
        "inconclusive_causes": dict(causes.most_common(6)),
        "machine": machine(),
        "load": load_average(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--probes", type=int, default=400)
    parser.add_argument("--faults", type=float, default=0.10)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    print(json.dumps(measure(args.probes, args.faults, args.seed), indent=2))


if __name__ == "__main__":
    main()
