"""What a scorecard format is: the :class:`Renderer` protocol each format module meets.

A format module (``audit/report/html.py``, ``json.py``, ...) defines one renderer as its
``RENDERER`` and is named in :data:`audit.report.registry.FORMAT_MODULES`; its output is bytes,
so text and PDF are written alike. Formats that are UTF-8 text made by a function use
:class:`TextRenderer`. A format whose file grows with the run (``scorecard.json``,
``probes.csv``) also gives a ``writer`` that writes the same bytes into the file a slice of probes
at a time, so the file is never held whole; :meth:`Renderer.write` is what the reports use.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

from audit.scorecard import Scorecard

__all__ = ["Renderer", "StreamedWriter", "TextFunction", "TextRenderer"]


@runtime_checkable
class Renderer(Protocol):
    """One scorecard format: its ``--format`` name, the file it writes, whether an evidence
    bundle carries it, and the rendering itself."""

    @property
    def name(self) -> str:
        """The name ``--format`` takes: ``html``, ``md``, ..."""

    @property
    def filename(self) -> str:
        """The file written in the run's report folder: ``scorecard.html``, ..."""

    @property
    def text(self) -> bool:
        """True for text an evidence bundle carries, signed (PDF is printed from its HTML)."""

    def check(self) -> None:
        """Raise :class:`~audit.errors.InputError` when this machine cannot render the
        format (PDF without Chromium), before anything is written."""

    def render(self, card: Scorecard, templates: Path | None, lang: str) -> bytes:
        """The file's content for ``card`` in language ``lang``; ``templates`` is a folder
        overriding the bundled templates, for the formats that use them."""

    def write(self, card: Scorecard, templates: Path | None, lang: str, path: Path) -> None:
        """Write :meth:`render`'s bytes into ``path`` (streamed where the format can be)."""


TextFunction = Callable[[Scorecard, Path | None, str], str]
# writes exactly the text of the format's TextFunction into the path, a part at a time
StreamedWriter = Callable[[Scorecard, Path], None]


@dataclass(frozen=True)
class TextRenderer:
    """A format whose file is the UTF-8 text ``function(card, templates, lang)`` returns."""

    name: str
    filename: str
    function: TextFunction
    text: bool = True
    writer: StreamedWriter | None = None

    def check(self) -> None:
        """A text format needs nothing beyond the package."""

    def render(self, card: Scorecard, templates: Path | None, lang: str) -> bytes:
        return self.function(card, templates, lang).encode("utf-8")

    def write(self, card: Scorecard, templates: Path | None, lang: str, path: Path) -> None:
        if self.writer is not None:
            self.writer(card, path)
        else:
            path.write_bytes(self.render(card, templates, lang))
