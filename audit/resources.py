"""Where the bundled data (probes/, templates/) lives, in a checkout or an installed wheel."""

from __future__ import annotations

from pathlib import Path

from audit.errors import RuntimeFailure

__all__ = ["bundled_packs_dir", "templates_dir"]

_PACKAGE = Path(__file__).resolve().parent


def _data_dir(name: str) -> Path:
    # An installed wheel carries the folders inside the package (audit/_data/<name>);
    # a checkout or editable install reads them from the project root.
    for candidate in (_PACKAGE / "_data" / name, _PACKAGE.parent / name):
        if candidate.is_dir():
            return candidate
    raise RuntimeFailure(f"bundled data folder '{name}' is missing from the installation")


def bundled_packs_dir() -> Path:
    return _data_dir("probes")


def templates_dir() -> Path:
    return _data_dir("templates")
