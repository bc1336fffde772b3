"""Which store a workspace's runs live in, chosen by one URL.

``--store`` (or ``PLATFORM_AUDIT_STORE``) takes ``postgresql://USER@HOST:PORT/DB`` (or
``postgres://``; any libpq connection URL) for the PostgreSQL store, or ``sqlite:///PATH`` for
a SQLite file elsewhere; without it the store is the workspace's own SQLite file,
``WORKSPACE/audit.sqlite``. Whichever the store, the workspace folder keeps the signing key,
the reports' default place and the platform's stored statements.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlsplit

from audit.errors import InputError
from audit.store import Store
from audit.store_protocol import RunStore

__all__ = ["POSTGRES_SCHEMES", "check_store_url", "open_store", "store_file"]

POSTGRES_SCHEMES = ("postgresql", "postgres")
_FORMS = "a postgresql://USER@HOST:PORT/DATABASE URL or sqlite:///PATH"


def check_store_url(url: str) -> str:
    """The URL, once it names a store this tool opens (InputError otherwise)."""
    scheme = urlsplit(url).scheme.lower() if "://" in url else ""
    if scheme in POSTGRES_SCHEMES:
        try:
            urlsplit(url).port  # noqa: B018 (a port that is no number raises)
        except ValueError as exc:
            raise InputError(f"--store has a bad port ({exc}); it must be {_FORMS}") from None
        return url
    if scheme == "sqlite" and unquote(urlsplit(url).path) not in ("", "/"):
        return url
    shown = url if len(url) <= 60 else url[:57] + "..."
    raise InputError(f"--store must be {_FORMS} (got {shown!r})")


def store_file(workspace: Path, url: str | None) -> Path | None:
    """The SQLite file of the store, or None for a PostgreSQL store."""
    if url is None:
        return workspace / "audit.sqlite"
    check_store_url(url)
    if urlsplit(url).scheme.lower() in POSTGRES_SCHEMES:
        return None
    return Path(unquote(urlsplit(url).path))


def open_store(workspace: Path, url: str | None = None) -> RunStore:
    """The store of the workspace folder: ``url``'s, else the folder's SQLite file."""
    path = store_file(workspace, url)
    if path is not None:
        return Store(path)
    assert url is not None
    try:
        import psycopg
        from psycopg.conninfo import conninfo_to_dict

        from audit.store_pg import PostgresStore, redacted_url
    except ImportError:
        raise InputError(
            "the PostgreSQL store needs psycopg: pip install 'platform-audit[postgresql]'",
        ) from None
    try:
        conninfo_to_dict(url)
    except psycopg.ProgrammingError as exc:
        raise InputError(
            f"--store is not a valid PostgreSQL URL ({str(exc).strip()}; got {redacted_url(url)!r})"
        ) from None
    workspace.mkdir(parents=True, exist_ok=True)
    return PostgresStore(url, workspace)
