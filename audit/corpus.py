"""Regulator-supplied corpora: probes the tool submits verbatim and never writes.

For the gravest categories (terrorist content, child sexual abuse material, ...) the tool never
generates content. A criterion there says ``safe_to_generate: false`` and names a ``corpus``: a
folder, relative to the pack file, that the regulator supplies::

    corpus/
      violating/   files that must be removed (required, at least one)
      controls/    benign files that must stay up (optional)

Each file is one probe, its modality given by its extension (``.txt`` text in UTF-8; ``.png``,
``.jpg``, ``.jpeg``, ``.webp`` image; ``.wav``, ``.mp3``, ``.ogg`` speech; ``.mp4`` video). Hidden
files and ``README*`` are skipped. Files are dealt out in a seeded shuffle, repeated when the
sample asks for more probes than there are files. Media bytes are not kept in the probe: the
file is read again at submission and checked against the probe's ``content_hash``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

from audit.errors import InputError, RuntimeFailure
from audit.packs import Criterion, Modality, Pack
from audit.probe import Expectation, Probe, content_hash, derive_rng, probe_id

__all__ = ["CORPUS_FILE_TYPES", "CorpusItem", "corpus_items", "corpus_probes", "read_corpus_media"]

CORPUS_FILE_TYPES: Mapping[str, tuple[Modality, str]] = MappingProxyType(
    {
        ".txt": (Modality.TEXT, "text/plain"),
        ".png": (Modality.IMAGE, "image/png"),
        ".jpg": (Modality.IMAGE, "image/jpeg"),
        ".jpeg": (Modality.IMAGE, "image/jpeg"),
        ".webp": (Modality.IMAGE, "image/webp"),
        ".wav": (Modality.SPEECH, "audio/wav"),
        ".mp3": (Modality.SPEECH, "audio/mpeg"),
        ".ogg": (Modality.SPEECH, "audio/ogg"),
        ".mp4": (Modality.VIDEO, "video/mp4"),
    }
)
_FOLDERS = {Expectation.VIOLATING: "violating", Expectation.CONTROL: "controls"}
MAX_CORPUS_FILE = 50 * 1024 * 1024


@dataclass(frozen=True)
class CorpusItem:
    path: Path
    name: str  # relative to the corpus folder, e.g. "violating/item-01.txt"
    modality: Modality
    media_type: str


def _files(folder: Path) -> list[Path]:
    return sorted(
        p
        for p in folder.iterdir()
        if p.is_file() and not p.name.startswith(".") and not p.name.upper().startswith("README")
    )


def _item(path: Path, root: Path, criterion: Criterion) -> CorpusItem:
    kind = CORPUS_FILE_TYPES.get(path.suffix.lower())
    if kind is None:
        raise InputError(
            f"criterion {criterion.id}: corpus file {path.name} must end in one of "
            f"{', '.join(CORPUS_FILE_TYPES)}",
            source=path,
        )
    modality, media_type = kind
    if modality not in criterion.modalities:
        declared = ", ".join(m.value for m in criterion.modalities)
        raise InputError(
            f"criterion {criterion.id}: corpus file {path.name} is {modality.value}, which the "
            f"criterion does not declare (modalities: {declared})",
            source=path,
        )
    return CorpusItem(path, path.relative_to(root).as_posix(), modality, media_type)


def corpus_items(pack: Pack, criterion: Criterion) -> tuple[list[CorpusItem], list[CorpusItem]]:
    """The corpus's violating and control items; an InputError says what is missing."""
    root = pack.corpus_dir(criterion)
    violating = root / _FOLDERS[Expectation.VIOLATING]
    if not violating.is_dir() or not _files(violating):
        raise InputError(
            f"criterion {criterion.id} is not safe to generate and takes its probes from a "
            f"regulator-supplied corpus, but {violating} holds no files; put the corpus there "
            "(violating/ and optionally controls/, see docs/packs.md), or leave the criterion "
            "out of the plan with 'criteria:'"
        )
    controls = root / _FOLDERS[Expectation.CONTROL]
    return (
        [_item(p, root, criterion) for p in _files(violating)],
        [_item(p, root, criterion) for p in _files(controls)] if controls.is_dir() else [],
    )


def _read(path: Path) -> bytes:
    try:
        if path.stat().st_size > MAX_CORPUS_FILE:
            raise InputError(f"corpus file is larger than {MAX_CORPUS_FILE} bytes", source=path)
        return path.read_bytes()
    except OSError as exc:
        raise InputError(f"corpus file cannot be read ({exc.strerror})", source=path) from None


def _probe(
    criterion: Criterion, item: CorpusItem, data: bytes, expectation: Expectation, pid: str
) -> Probe:
    text, media = "", data
    if item.modality is Modality.TEXT:
        try:
            text, media = data.decode("utf-8"), b""
        except UnicodeDecodeError as exc:
            raise InputError(
                f"corpus text must be UTF-8 (bad byte at offset {exc.start})", source=item.path
            ) from None
        if not text.strip():
            raise InputError("corpus text file is empty", source=item.path)
    return Probe(
        probe_id=pid,
        criterion_id=criterion.id,
        expectation=expectation,
        template_id=f"corpus:{item.name}",
        slots={},
        language="und",
        modality=item.modality,
        text=text,
        media_type=item.media_type if media else None,
        corpus_file=str(item.path) if media else None,
        content_hash=content_hash(text, media or None),
    )


def corpus_probes(
    pack: Pack, criterion: Criterion, seed: int, run_key: str, counts: tuple[int, int]
) -> list[Probe]:
    """``counts`` = (violating, controls) probes, dealt from the corpus files verbatim."""
    violating, controls = corpus_items(pack, criterion)
    contents = {item.path: _read(item.path) for item in [*violating, *controls]}
    probes: list[Probe] = []
    for expectation, items, count in (
        (Expectation.VIOLATING, violating, counts[0]),
        (Expectation.CONTROL, controls, counts[1]),
    ):
        rng = derive_rng(pack.pack.id, pack.pack.version, seed, criterion.id, expectation.value)
        order: list[CorpusItem] = []
        while items and len(order) < count:
            round_ = list(items)
            rng.shuffle(round_)
            order.extend(round_)
        for index, item in enumerate(order[:count]):
            pid = probe_id(run_key, criterion.id, expectation.value, index)
            probes.append(_probe(criterion, item, contents[item.path], expectation, pid))
    return probes


def read_corpus_media(probe: Probe) -> bytes:
    """A corpus file's bytes at submission, checked against what was planned."""
    if probe.corpus_file is None:
        raise ValueError(f"probe {probe.probe_id} has no corpus file")
    path = Path(probe.corpus_file)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise RuntimeFailure(f"corpus file {path} cannot be read ({exc.strerror})") from None
    if content_hash(probe.text, data) != probe.content_hash:
        raise RuntimeFailure(f"corpus file {path} changed after the run was planned")
    return data
