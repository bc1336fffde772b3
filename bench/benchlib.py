"""Helpers shared by the benchmarks in bench/: the machine, memory and CPU readings, and the
virtual-clock audit against the in-process reference sandbox.

Not a benchmark itself; the scripts beside it import it.
"""

from __future__ import annotations

import os
import platform
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx

from audit.clock import VirtualClock
from audit.evidence.ledger import body_with_text
from audit.plan import Plan, Sample, Schedule, Target
from audit.sandbox.app import create_app
from audit.sandbox.moderation import (
    SandboxConfig,
    default_config_path,
    load_sandbox_config,
)
from audit.store import ExchangeRecord, Store

CRITERIA = 3  # vn-superstition: VN-SUP-01 (order), VN-SUP-02 (proactive), VN-SUP-03 (notice)


def machine() -> str:
    """One line naming the machine, for the figures in docs/performance.md."""
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (
        f"{platform.machine()}, {os.cpu_count()} cores{f' ({model})' if model else ''}, "
        f"Python {platform.python_version()}, {platform.system()}"
    )


def load_average() -> str:
    """The 1-minute load average: other work on the machine slows the wall-clock figures."""
    try:
        return f"{os.getloadavg()[0]:.2f}"
    except OSError:
        return "unknown"


def peak_rss_mb() -> float:
    """This process's peak resident set size (VmHWM), in MiB, since it started its program.

    Not ``ru_maxrss``: Linux carries that across ``exec``, and Python starts a child by
    ``vfork``, so a child's ``ru_maxrss`` is at least its parent's peak at the start (a
    benchmark that planned 100,000 probes itself showed 952 MB for a ``verify`` whose own peak
    was 217 MB). ``VmHWM`` belongs to the address space ``exec`` made."""
    return proc_memory_mb(os.getpid())[1]


def proc_memory_mb(pid: int) -> tuple[float, float]:
    """(current, peak) resident set size of a live process, in MiB, from /proc."""
    values = {"VmRSS": 0.0, "VmHWM": 0.0}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, rest = line.partition(":")
        if name in values:
            values[name] = int(rest.split()[0]) / 1024
    return values["VmRSS"], values["VmHWM"]


def proc_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a live process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class Stopwatch:
    """Wall and CPU seconds of this process since it was made."""

    wall0: float = 0.0
    cpu0: float = 0.0

    def __post_init__(self) -> None:
        self.wall0, self.cpu0 = time.perf_counter(), time.process_time()

    def wall(self) -> float:
        return time.perf_counter() - self.wall0

    def cpu(self) -> float:
        return time.process_time() - self.cpu0


def split_probes(probes: int, control_share: float = 0.25) -> tuple[int, int]:
    """(violating, controls) per criterion for about ``probes`` probes over the pack."""
    per_criterion = max(2, probes // CRITERIA)
    controls = round(per_criterion * control_share)
    return per_criterion - controls, controls


def virtual_plan(probes: int, seed: int = 7, variant_share: float = 0.35) -> Plan:
    """A 24 h audit of the bundled pack: three criteria (order, proactive, notice), all with a
    24 h deadline, a quarter controls, a share of text variants, submitted over one hour."""
    violating, controls = split_probes(probes)
    return Plan(
        name="bench",
        packs=["vn-superstition"],
        targets=[
            Target(name="sandbox", base_url="http://sandbox.test", rate_limit=None, concurrency=32)
        ],
        seed=seed,
        sample=Sample(
            violating_per_criterion=violating,
            controls_per_criterion=controls,
            variant_share=variant_share,
        ),
        schedule=Schedule(submission_window="PT1H"),
    )


def sandbox_config() -> SandboxConfig:
    return load_sandbox_config(default_config_path())


def in_process_transport(
    clock: VirtualClock, config: SandboxConfig | None = None
) -> tuple[httpx.ASGITransport, object]:
    """The reference sandbox in this process, sharing the virtual clock: (transport, app)."""
    app = create_app(config or sandbox_config(), clock)
    return httpx.ASGITransport(app), app


def sent_entry(store: Store, run_id: str, record: ExchangeRecord) -> dict[str, Any]:
    """The record's entry with its request body whole (a submission refers to the probe's
    text by digest: put back from the stored probe)."""
    entry = record.entry
    if "request_text_sha256" not in entry or record.probe_id is None:
        return entry
    text = store.probe_content(run_id, record.probe_id)["text"]
    body = body_with_text(entry, text)
    assert body is not None, f"ledger entry {record.seq} does not name its probe's text"
    return dict(entry, request_body=body)
