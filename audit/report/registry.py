"""The scorecard formats: every format module's renderer, in the order ``--format`` lists
them, and :func:`render_formats`, which writes them.

A format is one module of this package that defines ``RENDERER`` (a
:class:`~audit.report.renderer.Renderer`), named in :data:`FORMAT_MODULES`, plus its gold file
in ``tests/gold/`` that tests/test_render.py checks it reproduces byte for byte.
"""

from __future__ import annotations

import importlib
from pathlib import Path

from audit.errors import InputError
from audit.i18n import language
from audit.report.renderer import Renderer
from audit.scorecard import Scorecard

__all__ = ["FORMATS", "FORMAT_MODULES", "RENDERERS", "TEXT_FORMATS", "render_formats"]

# modules of audit.report, in the order of FORMATS
FORMAT_MODULES = ("html", "markdown", "json", "junit", "csv", "pdf")


def _registered(modules: tuple[str, ...]) -> dict[str, Renderer]:
    """Each module's ``RENDERER`` by its format name; a module without one, or two formats of
    one name, is a fault of the package, found at import."""
    renderers: dict[str, Renderer] = {}
    for module_name in modules:
        module = importlib.import_module(f"{__package__}.{module_name}")
        renderer = getattr(module, "RENDERER", None)
        if not isinstance(renderer, Renderer):
            raise TypeError(f"{module.__name__} defines no RENDERER")
        if renderer.name in renderers:
            raise TypeError(f"{module.__name__}: format {renderer.name!r} is registered twice")
        renderers[renderer.name] = renderer
    return renderers


RENDERERS = _registered(FORMAT_MODULES)
FORMATS = tuple(RENDERERS)
TEXT_FORMATS = tuple(name for name, r in RENDERERS.items() if r.text)  # an evidence bundle's


def render_formats(
    card: Scorecard,
    formats: list[str],
    out_dir: Path,
    templates: Path | None = None,
    lang: str = "en",
) -> list[Path]:
    """Write ``formats`` of ``card`` into ``out_dir``, in language ``lang``."""
    unknown = [f for f in formats if f not in RENDERERS]
    if unknown:
        raise InputError(f"--format must be among {', '.join(FORMATS)} (got {', '.join(unknown)})")
    language(lang)  # an unknown language, or no Chromium for a PDF, fails before writing
    for fmt in formats:
        RENDERERS[fmt].check()
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for fmt in formats:
        renderer = RENDERERS[fmt]
        path = out_dir / renderer.filename
        renderer.write(card, templates, lang, path)
        written.append(path)
    return written
