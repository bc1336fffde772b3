"""The workers' shared state in the SQLite store: probe leases, target pace and places.

A worker (:mod:`audit.worker`) acts only on probes it holds a lease on: a row of ``leases``
naming it (``owner``) and the time the lease ends (``until``, on the workers' shared real
clock). Every statement here runs in one ``BEGIN IMMEDIATE`` transaction, and SQLite lets one
writer in at a time, so a claim (read the due probes whose lease is free or lapsed, then write
the new leases) is atomic against every other claim and every fenced write: two workers never
hold one probe. The PostgreSQL store does the same with ``SELECT ... FOR UPDATE SKIP LOCKED``
and an upsert in one transaction (:mod:`audit.store_pg_leases`); both implement
:class:`audit.store_protocol.LeaseStore`, which :func:`leases_of` finds for a store.

Fencing: :meth:`Leases.write_fenced` commits a worker's transitions only for the probes whose
lease it still holds (and renews those leases in the same transaction); a probe whose lease
lapsed or was taken is reported lost and nothing of it is written.

``target_pace`` keeps, per target (and per action with its own limit), the time its next
request may be sent: a token bucket of depth one, which spaces requests evenly as the
single-process limiter does. ``target_places`` keeps who holds each of a target's concurrent
places, each until a lease's length so a killed worker's place lapses.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from audit.store import _COMPACT_PROBE, Store
from audit.store_protocol import LeaseStore, ProbeUpdate, RunStore
from audit.store_rows import ObservationRow, ProbeRow, probe_from_sql

__all__ = ["Leases", "leases_of"]

# probes with work a worker may take: due by the horizon, interrupted mid-submission (to be
# reconciled at once), or not finished with no next step
_CLAIMABLE = (
    "p.run_id = ? AND (p.state = 'submitting' OR (p.next_at IS NOT NULL AND p.next_at <= ?)"
    " OR (p.state != 'finished' AND p.next_at IS NULL))"
    " AND NOT EXISTS (SELECT 1 FROM leases l WHERE l.run_id = p.run_id"
    " AND l.probe_id = p.probe_id AND l.until > ?)"
)


class Leases:
    """Leases, pace and places over one :class:`Store` (its connection, its transactions)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    # probe leases -------------------------------------------------------------------------
    def claim(
        self, run_id: str, owner: str, now: float, horizon: float, until: float, limit: int
    ) -> list[ProbeRow]:
        """Lease to ``owner`` until ``until`` up to ``limit`` of the run's probes with work due
        by ``horizon`` whose lease is free or lapsed at ``now``, in the order they fall due;
        returns them without their content (as :meth:`Store.due_probes`)."""
        if limit <= 0:
            return []
        with self.store.transaction() as db:
            rows = db.execute(
                f"SELECT {_COMPACT_PROBE} FROM probes p WHERE {_CLAIMABLE}"  # noqa: S608
                " ORDER BY p.next_at, p.seq LIMIT ?",
                (run_id, horizon, now, limit),
            ).fetchall()
            claimed = [probe_from_sql(r) for r in rows]
            db.executemany(
                "INSERT INTO leases VALUES (?,?,?,?) ON CONFLICT (run_id, probe_id)"
                " DO UPDATE SET owner = excluded.owner, until = excluded.until",
                ((run_id, row.probe_id, owner, until) for row in claimed),
            )
        return claimed

    def next_claimable(self, run_id: str, now: float) -> float | None:
        """When the run's next probe without a live lease falls due (``now`` for one to be
        reconciled or rescheduled); None when every probe with work left is leased, or none
        has work left."""
        with self.store.transaction() as db:
            row = db.execute(
                "SELECT MIN(CASE WHEN p.state = 'submitting' OR p.next_at IS NULL THEN ?"  # noqa: S608
                f" ELSE p.next_at END) FROM probes p WHERE {_CLAIMABLE}",
                (now, run_id, float("inf"), now),
            ).fetchone()
        return float(row[0]) if row is not None and row[0] is not None else None

    def write_fenced(
        self,
        run_id: str,
        changes: Sequence[tuple[str, ObservationRow | None, ProbeUpdate]],
        owner: str,
        now: float,
        until: float,
        release: Iterable[str] = (),
    ) -> set[str]:
        """Commit the changes (as :meth:`Store.update_probes`) of the probes whose lease
        ``owner`` still holds at ``now``, renewing those leases to ``until``, then end its
        leases of the probes in ``release``, all in one transaction; returns the probes whose
        lease was lost (nothing of theirs is written)."""
        lost: set[str] = set()
        with self.store.transaction() as db:
            for probe_id, observation, change in changes:
                if probe_id in lost:
                    continue
                renewed = db.execute(
                    "UPDATE leases SET until = ? WHERE run_id = ? AND probe_id = ?"
                    " AND owner = ? AND until > ?",
                    (until, run_id, probe_id, owner, now),
                ).rowcount
                if renewed != 1:
                    lost.add(probe_id)
                    continue
                Store._write_update(db, run_id, probe_id, observation, change)
            db.executemany(
                "DELETE FROM leases WHERE run_id = ? AND probe_id = ? AND owner = ?",
                ((run_id, probe_id, owner) for probe_id in set(release) - lost),
            )
        return lost

    def renew(self, owner: str, now: float, until: float) -> set[tuple[str, str]]:
        """Renew to ``until`` every lease (and target place) ``owner`` still holds at ``now``;
        returns the
        (run id, probe id) of those it holds (a lapsed one is no longer its own)."""
        with self.store.transaction() as db:
            db.execute(
                "UPDATE leases SET until = ? WHERE owner = ? AND until > ?", (until, owner, now)
            )
            db.execute(
                "UPDATE target_places SET until = ? WHERE owner = ? AND until > ?",
                (until, owner, now),
            )
            rows = db.execute(
                "SELECT run_id, probe_id FROM leases WHERE owner = ? AND until = ?",
                (owner, until),
            ).fetchall()
        return {(str(r[0]), str(r[1])) for r in rows}

    def holds(self, run_id: str, probe_id: str, owner: str, now: float, until: float) -> bool:
        """Whether ``owner`` still holds the probe's lease at ``now``; if so it is renewed to
        ``until`` (a step checks this right before it acts)."""
        with self.store.transaction() as db:
            renewed = db.execute(
                "UPDATE leases SET until = ? WHERE run_id = ? AND probe_id = ? AND owner = ?"
                " AND until > ?",
                (until, run_id, probe_id, owner, now),
            ).rowcount
        return bool(renewed == 1)

    def release(self, owner: str, run_id: str | None = None) -> int:
        """End ``owner``'s leases (of one run, or all); returns how many there were."""
        with self.store.transaction() as db:
            if run_id is None:
                cursor = db.execute("DELETE FROM leases WHERE owner = ?", (owner,))
                db.execute("DELETE FROM target_places WHERE owner = ?", (owner,))
            else:
                cursor = db.execute(
                    "DELETE FROM leases WHERE owner = ? AND run_id = ?", (owner, run_id)
                )
        return int(cursor.rowcount)

    def held(self, run_id: str | None = None) -> dict[str, tuple[str, float]]:
        """Who holds each leased probe (of one run, or all) and until when, lapsed or not:
        probe id (``run_id/probe_id`` without a run) -> (owner, until)."""
        with self.store.transaction() as db:
            if run_id is None:
                rows = db.execute("SELECT run_id || '/' || probe_id, owner, until FROM leases")
            else:
                rows = db.execute(
                    "SELECT probe_id, owner, until FROM leases WHERE run_id = ?", (run_id,)
                )
            return {str(r[0]): (str(r[1]), float(r[2])) for r in rows.fetchall()}

    def complete_run(self, run_id: str, at: float) -> bool:
        """Mark the run complete if it is running and no probe has a next step; True for the
        one caller that did (it writes the scorecard), False for every other."""
        with self.store.transaction() as db:
            done = db.execute(
                "UPDATE runs SET status = 'complete', finished_at = ?, failure = NULL"
                " WHERE run_id = ? AND status = 'running' AND NOT EXISTS (SELECT 1 FROM probes"
                " WHERE run_id = ? AND (next_at IS NOT NULL OR state != 'finished'))",
                (at, run_id, run_id),
            ).rowcount
        return bool(done == 1)

    # target pace and places -----------------------------------------------------------------
    def take_pace(self, key: str, interval: float, now: float) -> float:
        """The time the next request under ``key`` may be sent (not before ``now``); the one
        after it may be sent ``interval`` seconds later."""
        with self.store.transaction() as db:
            row = db.execute("SELECT next_at FROM target_pace WHERE key = ?", (key,)).fetchone()
            slot = max(now, float(row[0])) if row is not None else now
            db.execute(
                "INSERT INTO target_pace VALUES (?, ?) ON CONFLICT (key)"
                " DO UPDATE SET next_at = excluded.next_at",
                (key, slot + interval),
            )
        return slot

    def take_place(self, key: str, size: int, owner: str, now: float, until: float) -> int | None:
        """One of the ``size`` concurrent places of ``key`` free (or lapsed) at ``now``, taken
        by ``owner`` until ``until``; None when all are held."""
        with self.store.transaction() as db:
            taken = {
                int(r[0])
                for r in db.execute(
                    "SELECT place FROM target_places WHERE key = ? AND until > ?", (key, now)
                )
            }
            free = next((p for p in range(size) if p not in taken), None)
            if free is not None:
                db.execute(
                    "INSERT INTO target_places VALUES (?,?,?,?) ON CONFLICT (key, place)"
                    " DO UPDATE SET owner = excluded.owner, until = excluded.until",
                    (key, free, owner, until),
                )
        return free

    def leave_place(self, key: str, place: int, owner: str) -> None:
        with self.store.transaction() as db:
            db.execute(
                "DELETE FROM target_places WHERE key = ? AND place = ? AND owner = ?",
                (key, place, owner),
            )


def leases_of(store: RunStore) -> LeaseStore:
    """The workers' shared state in this store."""
    if isinstance(store, Store):
        return Leases(store)
    from audit.store_pg import PostgresStore
    from audit.store_pg_leases import PgLeases

    assert isinstance(store, PostgresStore)
    return PgLeases(store)
