"""A workspace: the folder holding the store (and, later, keys) for a set of runs."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from audit.evidence.keys import workspace_key
from audit.evidence.ledger import GENESIS
from audit.render import render_formats
from audit.scorecard import Scorecard, build_scorecard
from audit.statements.crosscheck import cross_check, load_stored
from audit.store_open import open_store, store_file
from audit.store_protocol import RunStore

__all__ = ["Workspace", "cyclic_gc_paused", "report_language", "scorecard_for", "write_reports"]


@dataclass(frozen=True)
class Workspace:
    """The folder of a set of runs (key, reports, statements) and the URL of their store
    (None: the folder's SQLite file; see :mod:`audit.store_open`)."""

    root: Path
    store_url: str | None = None

    @property
    def store_path(self) -> Path:
        """The SQLite file of the store (the folder's ``audit.sqlite`` unless ``store_url``
        names another)."""
        return store_file(self.root, self.store_url) or self.root / "audit.sqlite"

    def has_store(self) -> bool:
        """Whether there is a store to read runs from (a PostgreSQL store: always, opening
        it says when the server is not there)."""
        file = store_file(self.root, self.store_url)
        return file is None or file.is_file()

    def open(self) -> RunStore:
        return open_store(self.root, self.store_url)


@contextmanager
def cyclic_gc_paused() -> Iterator[None]:
    """Pause CPython's cyclic garbage collector for the block (reference counting still frees
    memory as usual), and switch it back on after if it was on.

    Building and writing a scorecard makes millions of small objects (stored rows and
    observations, figures, the rendered text) that live until the files are written and form
    no reference cycles: the collector would traverse all of them again and again and free
    nothing. For a run of 100,000 probes that was 21 full collections, 13 s of 47 s.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def scorecard_for(store: RunStore, run_id: str) -> Scorecard:
    """The run's scorecard from the store, once the store passes SQLite's full integrity check
    (a missing index entry would silently leave probes or observations out)."""
    with cyclic_gc_paused():
        store.check_integrity()
        run = store.run(run_id)
        store.pack_of(run)  # a pack changed on disk: the store is damaged, said so
        seq, head = store.last_exchange(run_id)
        key = workspace_key(store.workspace).fingerprint
        probes, observations = store.probes(run_id), store.observations(run_id)
        card = build_scorecard(
            run, probes, observations, (seq, head or GENESIS), key, store.media_sent(run_id)
        )
        stored = load_stored(store.workspace, run_id)
        if stored is None:
            return card
        section = cross_check(run, probes, observations, stored)
        return card.model_copy(update={"statements": section})


def report_language(store: RunStore, run_id: str, chosen: str | None = None) -> str:
    """The language of a run's scorecards: the one chosen, else its plan's, else English."""
    if chosen is not None:
        return chosen
    planned = store.run(run_id).plan.get("report_language")
    return planned if isinstance(planned, str) else "en"


def write_reports(
    store: RunStore,
    run_id: str,
    reports_root: Path,
    formats: list[str],
    templates: Path | None = None,
    lang: str | None = None,
) -> tuple[Scorecard, list[Path]]:
    """The run's scorecard, written in ``formats`` into REPORTS/RUN_ID in the run's language
    (``lang``, else the plan's)."""
    tongue = report_language(store, run_id, lang)
    with cyclic_gc_paused():
        card = scorecard_for(store, run_id)
        return card, render_formats(card, formats, reports_root / run_id, templates, tongue)
