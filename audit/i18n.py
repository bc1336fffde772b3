"""The languages scorecards are written in: gettext catalogs read with Babel, and figures
(numbers, percentages, dates, durations) formatted for the language's locale.

English is the source language: its messages are the msgids in the code and templates, and its
figures keep the forms the scorecards have always used (``71.7 %``, ``24 h``, ISO 8601 times).
Every other language reads its catalog, ``audit/locale/<code>/LC_MESSAGES/platform-audit.mo``
(compiled from the ``.po`` beside it with ``make catalogs``; a test keeps the two in step), and
formats its figures with Babel for its CLDR locale (``71,7%``, ``24 giờ``, ``05/01/2026``).

A language whose catalog is missing is an error, never a silent fall-back to English.
"""

from __future__ import annotations

import copy
import gettext
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from audit.durations import format_duration
from audit.errors import InputError, RuntimeFailure

if TYPE_CHECKING:  # Babel is imported where a language is used: the engine only marks messages
    from babel import Locale

__all__ = ["DOMAIN", "LANGUAGES", "LOCALE_DIR", "N_", "Language", "language"]

DOMAIN = "platform-audit"
LANGUAGES = ("en", "vi")
LOCALE_DIR = Path(__file__).resolve().parent / "locale"

_UNITS = ("d", "h", "min", "s")


def N_(message: str) -> str:  # noqa: N802 (the gettext convention for a marked message)
    """Mark ``message`` for the catalogs without translating it here (it is translated where it
    is shown, in the reader's language)."""
    return message


class Language:
    """One language: its messages (``gettext``/``ngettext``) and its figures."""

    def __init__(self, code: str, translations: gettext.NullTranslations) -> None:
        self.code = code
        self.translations = translations
        from babel import Locale

        self._locale: Locale = Locale.parse(code)

    def gettext(self, message: str) -> str:
        return self.translations.gettext(message)

    def ngettext(self, singular: str, plural: str, n: int) -> str:
        return self.translations.ngettext(singular, plural, n)

    def format(self, message: str, **values: object) -> str:
        """``message`` translated, then filled with ``values`` (``%(name)s`` placeholders)."""
        return self.gettext(message) % values

    def pct(self, value: float | None, digits: int = 1) -> str:
        """A share as a percentage: ``71.7 %`` in English, the locale's form elsewhere."""
        if value is None:
            return "–"
        if self.code == "en":
            return f"{value * 100:.{digits}f} %"
        pattern = copy.copy(self._locale.percent_formats[None])
        pattern.frac_prec = (digits, digits)
        return str(pattern.apply(value, self._locale))

    def number(self, value: float, digits: int) -> str:
        """A decimal with ``digits`` places after the separator."""
        if self.code == "en":
            return f"{value:.{digits}f}"
        from babel.numbers import format_decimal

        return format_decimal(value, format="0." + "0" * digits, locale=self._locale)

    def significant(self, value: float) -> str:
        """A number to three significant figures (``%.3g``), in the locale's digits."""
        text = f"{value:.3g}"
        if self.code == "en" or "e" in text:
            return text
        from babel.numbers import format_decimal

        places = len(text.partition(".")[2])
        return format_decimal(
            value, format="0." + "0" * places if places else "0", locale=self.code
        )

    def unit(self, count: str, unit: str) -> str:
        """``count`` followed by a unit of time (``d``, ``h``, ``min``, ``s``) in this language."""
        words = {
            "d": self.gettext(N_("%(count)s d")),
            "h": self.gettext(N_("%(count)s h")),
            "min": self.gettext(N_("%(count)s min")),
            "s": self.gettext(N_("%(count)s s")),
        }
        return words[unit] % {"count": count}

    def duration(self, seconds: float) -> str:
        """A duration in at most two units: ``24 h``, ``1 h 30 min`` (``24 giờ`` in Vietnamese)."""
        if self.code == "en":
            return format_duration(seconds)
        from babel.numbers import format_decimal

        if seconds < 0:
            return "-" + self.duration(-seconds)
        if seconds < 60:
            return self.unit(self.significant(seconds), "s")
        parts: list[str] = []
        rest = round(seconds)
        for name, size in zip(_UNITS, (86400, 3600, 60, 1), strict=True):
            count, rest = divmod(rest, size)
            if count:
                parts.append(self.unit(format_decimal(count, locale=self.code), name))
            if len(parts) == 2:
                break
        return " ".join(parts)

    def clock(self, seconds: float) -> str:
        """A moment on a deadline's clock in one unit: ``6 h``, ``36 h``, ``7 d``, ``45 min``."""
        for unit, size, limit in (("d", 86400.0, 3 * 86400.0), ("h", 3600.0, 3600.0)):
            if seconds >= limit:
                return self.unit(self.significant(seconds / size), unit)
        if seconds >= 60:
            return self.unit(self.significant(seconds / 60), "min")
        return self.unit(self.significant(seconds), "s")

    def timestamp(self, iso: str) -> tuple[str, str]:
        """An ISO 8601 UTC stamp as (date, time): ISO parts in English, the locale's numeric
        date with the full year and its medium time elsewhere."""
        if self.code == "en":
            date, _, rest = iso.partition("T")
            return date, rest
        from babel.dates import format_skeleton, format_time

        moment = datetime.fromisoformat(iso.replace("Z", "+00:00")).astimezone(UTC)
        return (
            format_skeleton("yMd", moment, locale=self._locale),  # 5/1/2026: numeric, full year
            format_time(moment, "medium", tzinfo=UTC, locale=self._locale) + " UTC",
        )


@cache
def language(code: str) -> Language:
    """The language named ``code`` (one of :data:`LANGUAGES`)."""
    if code not in LANGUAGES:
        raise InputError(f"'lang' must be one of {', '.join(LANGUAGES)} (got {code!r})")
    if code == "en":
        return Language(code, gettext.NullTranslations())
    path = LOCALE_DIR / code / "LC_MESSAGES" / f"{DOMAIN}.mo"
    if not path.is_file():
        raise RuntimeFailure(f"the message catalog for '{code}' is missing: {path}")
    from babel.support import Translations

    with path.open("rb") as catalog:
        return Language(code, Translations(catalog, domain=DOMAIN))
