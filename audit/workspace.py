"""A workspace: the folder holding the store (and, later, keys) for a set of runs."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from audit.evidence import GENESIS
from audit.keys import workspace_key
from audit.render import render_formats
from audit.scorecard import Scorecard, build_scorecard
from audit.store import Store

__all__ = ["Workspace"]


@dataclass(frozen=True)
class Workspace:
    root: Path

    @property
    def store_path(self) -> Path:
        return self.root / "audit.sqlite"

    def open(self) -> Store:
        return Store(self.store_path)


def scorecard_for(store: Store, run_id: str) -> Scorecard:
    run = store.run(run_id)
    seq, head = store.last_exchange(run_id)
    key = workspace_key(store.path.parent).fingerprint
    return build_scorecard(
        run, store.probes(run_id), store.observations(run_id), (seq, head or GENESIS), key
    )


def write_reports(
    store: Store,
    run_id: str,
    reports_root: Path,
    formats: list[str],
    templates: Path | None = None,
) -> tuple[Scorecard, list[Path]]:
    card = scorecard_for(store, run_id)
    return card, render_formats(card, formats, reports_root / run_id, templates)
