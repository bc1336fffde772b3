"""The workers' shared state in the PostgreSQL store (see :mod:`audit.store_leases`, the same
for SQLite, for what each operation means).

A claim is one transaction: ``SELECT ... FOR UPDATE OF p SKIP LOCKED`` picks the claimable
probes (rows another claimer has locked are skipped, not waited for), and an upsert of their
leases takes each only where the lease is still free or lapsed (``WHERE leases.until <= now``,
evaluated again on the newest row should another transaction have written it), returning the
probes it took. A fenced write renews the writer's lease row (``owner = me AND until > now``)
before it writes the probe's change: the lease row is locked by whichever comes first, so a
claimer and the lease's old holder never both win.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from audit.store_pg import _COMPACT_PROBE, PostgresStore
from audit.store_protocol import ProbeUpdate
from audit.store_rows import ObservationRow, ProbeRow, probe_from_sql

__all__ = ["PgLeases"]

_CLAIMABLE = (
    "p.run_id = %(run)s AND (p.state = 'submitting' OR p.next_at <= %(horizon)s"
    " OR (p.state != 'finished' AND p.next_at IS NULL))"
    " AND NOT EXISTS (SELECT 1 FROM leases l WHERE l.run_id = p.run_id"
    " AND l.probe_id = p.probe_id AND l.until > %(now)s)"
)


class PgLeases:
    """Leases, pace and places over one :class:`PostgresStore`."""

    def __init__(self, store: PostgresStore) -> None:
        self.store = store

    def claim(
        self, run_id: str, owner: str, now: float, horizon: float, until: float, limit: int
    ) -> list[ProbeRow]:
        if limit <= 0:
            return []
        from psycopg.rows import dict_row

        args = {"run": run_id, "now": now, "horizon": horizon, "limit": limit}
        with self.store.transaction() as conn, conn.cursor(row_factory=dict_row) as cur:
            rows = cur.execute(
                f"SELECT {_COMPACT_PROBE} FROM probes p WHERE {_CLAIMABLE}"  # noqa: S608
                " ORDER BY p.next_at, p.seq LIMIT %(limit)s FOR UPDATE OF p SKIP LOCKED",
                args,
            ).fetchall()
            if not rows:
                return []
            taken = {
                str(r["probe_id"])
                for r in cur.execute(
                    "INSERT INTO leases SELECT %s, unnest(%s::text[]), %s, %s"
                    " ON CONFLICT (run_id, probe_id) DO UPDATE SET owner = excluded.owner,"
                    " until = excluded.until WHERE leases.until <= %s RETURNING probe_id",
                    (run_id, [r["probe_id"] for r in rows], owner, until, now),
                ).fetchall()
            }
        return [probe_from_sql(r) for r in rows if r["probe_id"] in taken]  # type: ignore[arg-type]

    def next_claimable(self, run_id: str, now: float) -> float | None:
        args = {"run": run_id, "now": now, "horizon": float("inf")}
        with self.store.transaction() as conn:
            row = conn.execute(
                "SELECT MIN(CASE WHEN p.state = 'submitting' OR p.next_at IS NULL THEN %(now)s"  # noqa: S608
                f" ELSE p.next_at END) FROM probes p WHERE {_CLAIMABLE}",
                args,
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
        lost: set[str] = set()
        kept: list[tuple[str, ObservationRow | None, ProbeUpdate]] = []
        with self.store.transaction() as conn, conn.cursor() as cur:
            for probe_id in dict.fromkeys(p for p, _, _ in changes):  # in order, each once
                renewed = cur.execute(
                    "UPDATE leases SET until = %s WHERE run_id = %s AND probe_id = %s"
                    " AND owner = %s AND until > %s",
                    (until, run_id, probe_id, owner, now),
                ).rowcount
                if renewed != 1:
                    lost.add(probe_id)
            kept = [c for c in changes if c[0] not in lost]
            PostgresStore.write_changes(cur, run_id, kept)
            gone = sorted(set(release) - lost)
            if gone:
                cur.execute(
                    "DELETE FROM leases WHERE run_id = %s AND probe_id = ANY(%s) AND owner = %s",
                    (run_id, gone, owner),
                )
        return lost

    def renew(self, owner: str, now: float, until: float) -> set[tuple[str, str]]:
        with self.store.transaction() as conn:
            rows = conn.execute(
                "UPDATE leases SET until = %s WHERE owner = %s AND until > %s"
                " RETURNING run_id, probe_id",
                (until, owner, now),
            ).fetchall()
            conn.execute(
                "UPDATE target_places SET until = %s WHERE owner = %s AND until > %s",
                (until, owner, now),
            )
        return {(str(r[0]), str(r[1])) for r in rows}

    def holds(self, run_id: str, probe_id: str, owner: str, now: float, until: float) -> bool:
        with self.store.transaction() as conn:
            renewed = conn.execute(
                "UPDATE leases SET until = %s WHERE run_id = %s AND probe_id = %s AND owner = %s"
                " AND until > %s",
                (until, run_id, probe_id, owner, now),
            ).rowcount
        return bool(renewed == 1)

    def release(self, owner: str, run_id: str | None = None) -> int:
        with self.store.transaction() as conn:
            if run_id is None:
                count = conn.execute("DELETE FROM leases WHERE owner = %s", (owner,)).rowcount
                conn.execute("DELETE FROM target_places WHERE owner = %s", (owner,))
            else:
                count = conn.execute(
                    "DELETE FROM leases WHERE owner = %s AND run_id = %s", (owner, run_id)
                ).rowcount
        return int(count)

    def held(self, run_id: str | None = None) -> dict[str, tuple[str, float]]:
        with self.store.transaction() as conn:
            if run_id is None:
                rows = conn.execute(
                    "SELECT run_id || '/' || probe_id, owner, until FROM leases"
                ).fetchall()
            else:
                rows = conn.execute(
                    "SELECT probe_id, owner, until FROM leases WHERE run_id = %s", (run_id,)
                ).fetchall()
        return {str(r[0]): (str(r[1]), float(r[2])) for r in rows}

    def complete_run(self, run_id: str, at: float) -> bool:
        with self.store.transaction() as conn:
            done = conn.execute(
                "UPDATE runs SET status = 'complete', finished_at = %s, failure = NULL"
                " WHERE run_id = %s AND status = 'running' AND NOT EXISTS (SELECT 1 FROM probes"
                " WHERE run_id = %s AND (next_at IS NOT NULL OR state != 'finished'))",
                (at, run_id, run_id),
            ).rowcount
        return bool(done == 1)

    def take_pace(self, key: str, interval: float, now: float) -> float:
        with self.store.transaction() as conn:
            row: Any = conn.execute(
                "INSERT INTO target_pace VALUES (%s, %s) ON CONFLICT (key) DO UPDATE"
                " SET next_at = GREATEST(target_pace.next_at, %s) + %s RETURNING next_at",
                (key, now + interval, now, interval),
            ).fetchone()
        return float(row[0]) - interval

    def take_place(self, key: str, size: int, owner: str, now: float, until: float) -> int | None:
        with self.store.transaction() as conn:
            conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"places {key}",))
            taken = {
                int(r[0])
                for r in conn.execute(
                    "SELECT place FROM target_places WHERE key = %s AND until > %s", (key, now)
                ).fetchall()
            }
            free = next((p for p in range(size) if p not in taken), None)
            if free is not None:
                conn.execute(
                    "INSERT INTO target_places VALUES (%s,%s,%s,%s) ON CONFLICT (key, place)"
                    " DO UPDATE SET owner = excluded.owner, until = excluded.until",
                    (key, free, owner, until),
                )
        return free

    def leave_place(self, key: str, place: int, owner: str) -> None:
        with self.store.transaction() as conn:
            conn.execute(
                "DELETE FROM target_places WHERE key = %s AND place = %s AND owner = %s",
                (key, place, owner),
            )
