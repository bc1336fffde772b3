"""The scorecards' message catalogs: extract, update and compile them with Babel.

    python scripts/catalogs.py            # extract messages, update every .po, compile every .mo
    python scripts/catalogs.py --check    # exit 1 when a .pot, .po or .mo is out of date

Messages come from ``audit/**.py`` (``N_``, ``gettext``, ``ngettext``) and ``templates/**.j2``
(jinja2's ``_``/``gettext``/``ngettext``), as ``babel.cfg`` says. The template is
``audit/locale/platform-audit.pot``; each language has ``audit/locale/<code>/LC_MESSAGES/
platform-audit.po`` (the translations, written by hand) and the ``.mo`` compiled from it, which
the package ships. ``make catalogs`` runs this script; tests/test_i18n.py checks that the
committed files are what it would write.
"""

from __future__ import annotations

import argparse
import io
import sys
from datetime import UTC, datetime
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po, write_po

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from audit import __version__  # noqa: E402

LOCALE = ROOT / "audit" / "locale"
DOMAIN = "platform-audit"
TEMPLATE = LOCALE / f"{DOMAIN}.pot"
UNDATED = datetime(1970, 1, 1, tzinfo=UTC)


def extracted() -> Catalog:
    """Every message of the code and templates, as a catalog template."""
    with (ROOT / "babel.cfg").open(encoding="utf-8") as config:
        method_map, options_map = parse_mapping_cfg(config)
    template = Catalog(project="platform-audit", fuzzy=False)
    for _, lineno, message, comments, context in extract_from_dir(
        str(ROOT), method_map, options_map, strip_comment_tags=True
    ):
        template.add(message, None, [], auto_comments=comments, context=context)
        del lineno
    for message in template:
        if message.id and not _placeholders(message.id):
            message.flags.discard("python-format")  # a "10 % unless" is not a placeholder
    return template


def _placeholders(message_id: object) -> bool:
    ids = message_id if isinstance(message_id, tuple) else (message_id,)
    return any("%(" in str(i) for i in ids)


def _headed(catalog: Catalog) -> Catalog:
    """The catalog with the project's own header in place of Babel's placeholders."""
    language = catalog.locale.english_name if catalog.locale else "The"
    catalog.header_comment = (
        f"# {language} messages of the platform-audit scorecards.\n"
        "# Distributed under the project's licence (Apache-2.0).\n"
        "# Update with: python scripts/catalogs.py"
    )
    catalog.project, catalog.version = "platform-audit", __version__
    catalog.msgid_bugs_address = ""
    catalog.last_translator = "platform-audit authors"
    if catalog.locale:
        catalog.language_team = f"{language} <platform-audit authors>"
    return catalog


def _po_bytes(catalog: Catalog) -> bytes:
    _headed(catalog)
    out = io.BytesIO()
    write_po(out, catalog, width=0, omit_header=False, sort_output=True, no_location=True)
    return _stable(out.getvalue())


def _stable(text: bytes) -> bytes:
    """The catalog without the lines that name a date or Babel's version: a rerun, or another
    Babel, changes nothing."""
    lines = text.split(b"\n")
    keep = [
        line for line in lines if not line.startswith((b'"POT-Creation-Date', b'"PO-Revision-Date'))
    ]
    return b"\n".join(keep)


def _mo_bytes(catalog: Catalog) -> bytes:
    # the compiled header names a creation date; an undated catalog compiles the same each time
    catalog.creation_date = catalog.revision_date = UNDATED
    out = io.BytesIO()
    write_mo(out, catalog)
    return out.getvalue()


def planned() -> dict[Path, bytes]:
    """Every catalog file as this script writes it."""
    template = extracted()
    files = {TEMPLATE: _po_bytes(template)}
    for po_path in sorted(LOCALE.glob(f"*/LC_MESSAGES/{DOMAIN}.po")):
        with po_path.open("rb") as po:
            catalog = read_po(po, locale=po_path.parent.parent.name, domain=DOMAIN)
        catalog.update(template, no_fuzzy_matching=True, update_header_comment=False)
        catalog.obsolete.clear()
        for message in catalog:
            if message.id and not _placeholders(message.id):
                message.flags.discard("python-format")
        files[po_path] = _po_bytes(catalog)
        files[po_path.with_suffix(".mo")] = _mo_bytes(catalog)
    return files


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report files out of date")
    args = parser.parse_args(argv)
    files = planned()
    stale = [p for p, data in files.items() if not p.is_file() or p.read_bytes() != data]
    if args.check:
        for path in stale:
            print(f"{path.relative_to(ROOT)} is out of date: run python scripts/catalogs.py")
        return 1 if stale else 0
    for path, data in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return 0


if __name__ == "__main__":
    sys.exit(main())
