"""What `run` says before a run starts: when its last deadline falls and how long it lasts, and
whether a sandbox target compresses time as the plan does.

Helpers of the ``run`` command, not commands themselves (no ``COMMANDS`` here).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # imported in the bodies: --help stays light
    from audit.plan import Plan
    from audit.store_protocol import RunStore

__all__ = ["run_outlook", "time_scale_warnings"]


def run_outlook(store: RunStore, run_id: str, time_scale: float) -> str:
    """When the run's last deadline falls and how long it lasts, from its planned probes: each
    deadline counted from the probe's planned submission, the run's end at its last grace look.
    Filing a notice takes a little longer; withdrawals follow the end."""
    from audit.clock import utc_iso
    from audit.durations import format_duration

    run = store.run(run_id)
    rows = store.probes(run_id)
    last_deadline = max(r.scheduled_at + r.deadline_s for r in rows)
    end = max(r.scheduled_at + r.deadline_s + r.grace_s for r in rows)
    total = end - run.created_at
    text = (
        f"expected last deadline {utc_iso(last_deadline)}, total duration about "
        f"{format_duration(total)}"
    )
    if time_scale != 1:
        text += f" ({format_duration(total * time_scale)} in platform time)"
    return text


def time_scale_warnings(plan: Plan) -> list[str]:
    """One warning per sandbox target whose reported time scale differs from the plan's: the
    sandbox divides its latencies by its own scale and the plan its deadlines by the plan's,
    so a mismatch makes removals look late (or instant). Asked before the run is created, so
    nothing of a run is at stake; a target that does not answer is left to the run's own
    check, which records its answers."""
    from audit.adapters.sandbox import reported_time_scale

    warnings = []
    for target in plan.targets:
        if target.adapter != "sandbox":
            continue
        scale = reported_time_scale(target.base_url, target.verify_tls, min(target.timeout, 5.0))
        if scale is not None and scale != plan.time_scale:
            warnings.append(
                f"target {target.name} reports time scale {scale:g} but the plan has "
                f"time_scale {plan.time_scale:g}: deadlines and the platform's latencies are "
                f"compressed differently, so the verdicts will not mean what they say; set "
                f"time_scale: {scale:g} in the plan or serve the sandbox with "
                f"--time-scale {plan.time_scale:g}"
            )
    return warnings
