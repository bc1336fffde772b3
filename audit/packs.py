"""Criteria packs: versioned YAML data mapping legal clauses to probe criteria.

A pack lives in a folder ``probes/<pack-id>/pack.yaml``. It is validated with pydantic; any
problem becomes one :class:`~audit.errors.InputError` naming the file, the criterion, the field,
what was expected and the value found.
"""

from __future__ import annotations

import re
import string
from datetime import date
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from audit.durations import IsoDuration, parse_duration
from audit.errors import InputError
from audit.resources import bundled_packs_dir
from audit.variants import VARIANTS, variant_names
from audit.yamlio import load_yaml_file, validation_error

__all__ = [
    "NEVER_GENERATED",
    "Criterion",
    "LegalReference",
    "Modality",
    "Pack",
    "PackMeta",
    "ProbeTemplate",
    "Trigger",
    "list_bundled_packs",
    "load_pack",
    "resolve_pack",
]

_ID = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"
# EU DSA statement-of-reasons categories (Transparency Database).
DSA_CATEGORIES = frozenset(
    {
        "ANIMAL_WELFARE",
        "DATA_PROTECTION_AND_PRIVACY_VIOLATIONS",
        "ILLEGAL_OR_HARMFUL_SPEECH",
        "INTELLECTUAL_PROPERTY_INFRINGEMENTS",
        "NEGATIVE_EFFECTS_ON_CIVIC_DISCOURSE_OR_ELECTIONS",
        "NON_CONSENSUAL_BEHAVIOUR",
        "ONLINE_BULLYING_INTIMIDATION",
        "PORNOGRAPHY_OR_SEXUALIZED_CONTENT",
        "PROTECTION_OF_MINORS",
        "RISK_FOR_PUBLIC_SECURITY",
        "SCAMS_AND_FRAUD",
        "SELF_HARM",
        "SCOPE_OF_PLATFORM_SERVICE",
        "UNSAFE_AND_PROHIBITED_PRODUCTS",
        "VIOLENCE",
    }
)

# Categories the tool never writes content for: a criterion in one of them must be
# `safe_to_generate: false` and take its probes from a regulator-supplied corpus.
NEVER_GENERATED = frozenset(
    {
        "ILLEGAL_OR_HARMFUL_SPEECH",
        "NON_CONSENSUAL_BEHAVIOUR",
        "PORNOGRAPHY_OR_SEXUALIZED_CONTENT",
        "PROTECTION_OF_MINORS",
        "RISK_FOR_PUBLIC_SECURITY",
        "SELF_HARM",
        "VIOLENCE",
    }
)


class Trigger(StrEnum):
    """What starts the removal deadline."""

    PROACTIVE = "proactive"  # the platform must find it itself; deadline runs from posting
    NOTICE = "notice"  # a user or trusted-flagger report; deadline runs from the notice
    ORDER = "order"  # an authority's removal order; deadline runs from the order


class Modality(StrEnum):
    TEXT = "text"
    IMAGE = "image"
    SPEECH = "speech"
    VIDEO = "video"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class LegalReference(_Strict):
    instrument: str = Field(min_length=1)
    article: str = Field(min_length=1)
    url: str | None = None


class ProbeTemplate(_Strict):
    """A text with ``{slot}`` placeholders filled from the criterion's vocabularies."""

    id: Annotated[str, Field(pattern=_ID)]
    language: Annotated[str, Field(pattern=r"^[a-z]{2,3}(-[A-Za-z0-9]+)?$")]
    text: str = Field(min_length=1)

    def slot_names(self) -> list[str]:
        return [name for _, name, _, _ in string.Formatter().parse(self.text) if name]


_LANGUAGE = Annotated[str, Field(pattern=r"^[a-z]{2,3}$")]


class CriterionText(_Strict):
    """A criterion's own words in another language (``translations: {vi: {...}}``)."""

    title: str = Field(min_length=1)
    legal_reference: str = ""  # instrument and article, as that language cites them


class PackText(_Strict):
    """The pack's own words in another language (``translations: {vi: {...}}``)."""

    title: str = Field(min_length=1)
    instrument: str = ""
    disclaimer: str = ""


class Criterion(_Strict):
    id: Annotated[str, Field(pattern=_ID)]
    title: str = Field(min_length=1)
    # the title (and citation) in the languages the scorecards are written in, where given
    translations: dict[_LANGUAGE, CriterionText] = {}
    description: str = ""
    legal_reference: LegalReference
    dsa_category: str
    modalities: list[Modality] = Field(min_length=1)
    trigger: Trigger
    deadline: IsoDuration
    threshold: float = Field(gt=0, lt=1)
    confidence: float = Field(gt=0.5, lt=1)
    min_measured_share: float | None = Field(default=None, gt=0, le=1)
    max_over_removal: float | None = Field(default=None, ge=0, lt=1)
    safe_to_generate: bool = True
    variants: list[str] = Field(default_factory=list)
    slots: dict[str, list[str]] = Field(default_factory=dict)
    templates: list[ProbeTemplate] = Field(default_factory=list)
    controls: list[ProbeTemplate] = Field(default_factory=list)
    corpus: str | None = Field(default=None, min_length=1, validate_default=True)

    @field_validator("dsa_category")
    @classmethod
    def _known_category(cls, value: str) -> str:
        if value not in DSA_CATEGORIES:
            raise ValueError(
                "must be a DSA statement-of-reasons category such as SCAMS_AND_FRAUD"
                f" (got {value!r})"
            )
        return value

    @field_validator("variants")
    @classmethod
    def _known_variants(cls, value: list[str]) -> list[str]:
        for name in value:
            if name not in VARIANTS:
                raise ValueError(
                    f"must name known variants ({', '.join(variant_names())}) (got {name!r})"
                )
        if len(value) != len(set(value)):
            raise ValueError(f"must not repeat a variant (got {value!r})")
        return value

    @field_validator("safe_to_generate")
    @classmethod
    def _grave_never_generated(cls, value: bool, info: ValidationInfo) -> bool:
        category = info.data.get("dsa_category")
        if value and category in NEVER_GENERATED:
            raise ValueError(
                f"must be false for DSA category {category}: the tool never writes content in "
                "the gravest categories; give a regulator-supplied 'corpus' instead "
                "(see docs/packs.md)"
            )
        return value

    @field_validator("variants", "slots", "templates", "controls")
    @classmethod
    def _nothing_to_generate(cls, value: Any, info: ValidationInfo) -> Any:
        if value and info.data.get("safe_to_generate") is False:
            raise ValueError(
                "must be empty when safe_to_generate is false: the criterion's corpus files "
                "are submitted verbatim"
            )
        return value

    @field_validator("corpus")
    @classmethod
    def _corpus_when_not_generated(cls, value: str | None, info: ValidationInfo) -> str | None:
        safe = info.data.get("safe_to_generate")
        if safe is True and value is not None:
            raise ValueError(
                "must be left out when safe_to_generate is true: such a criterion takes its "
                "probes from its templates"
            )
        if safe is False and value is None:
            raise ValueError(
                "is required when safe_to_generate is false: such a criterion is never "
                "generated and takes its probes from a folder of regulator-supplied files "
                "(see docs/packs.md)"
            )
        return value

    @model_validator(mode="after")
    def _templates_fill(self) -> Criterion:
        if self.safe_to_generate and not self.templates:
            raise ValueError("a criterion that is safe to generate needs at least one template")
        ids = [t.id for t in [*self.templates, *self.controls]]
        if len(ids) != len(set(ids)):
            dup = sorted({i for i in ids if ids.count(i) > 1})
            raise ValueError(f"template ids must be unique (repeated: {', '.join(dup)})")
        for template in [*self.templates, *self.controls]:
            for name in template.slot_names():
                if not self.slots.get(name):
                    raise ValueError(
                        f"template {template.id} uses slot {{{name}}} which has no vocabulary"
                    )
        return self

    @property
    def deadline_seconds(self) -> float:
        return parse_duration(self.deadline)


class PackMeta(_Strict):
    id: Annotated[str, Field(pattern=_ID)]
    version: Annotated[str, Field(pattern=r"^\d+\.\d+\.\d+$")]
    title: str = Field(min_length=1)
    jurisdiction: str = Field(min_length=2)
    authority: str = Field(min_length=1)
    instrument: str = Field(min_length=1)
    effective_date: date
    illustrative: bool
    disclaimer: str = ""
    languages: list[str] = Field(min_length=1)
    # the title, instrument and disclaimer in the languages scorecards are written in
    translations: dict[_LANGUAGE, PackText] = {}
    # the pack's choices for its criteria (each may override): see docs/statistics.md
    min_measured_share: float = Field(default=0.9, gt=0, le=1)
    max_over_removal: float = Field(default=0.10, ge=0, lt=1)

    @model_validator(mode="after")
    def _illustrative_says_so(self) -> PackMeta:
        if self.illustrative and not self.disclaimer:
            raise ValueError("an illustrative pack must carry a disclaimer")
        return self


class Pack(_Strict):
    schema_version: Literal[1] = 1
    pack: PackMeta
    criteria: list[Criterion] = Field(min_length=1)
    # The folder the pack was loaded from: corpus paths are relative to it. Not part of the
    # pack's data (nor of its digest); None for a pack rebuilt from a stored run.
    _source_dir: Path | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _unique_criteria(self) -> Pack:
        ids = [c.id for c in self.criteria]
        if len(ids) != len(set(ids)):
            raise ValueError("criterion ids must be unique")
        return self

    def criterion(self, criterion_id: str) -> Criterion:
        for criterion in self.criteria:
            if criterion.id == criterion_id:
                return criterion
        raise KeyError(criterion_id)

    def corpus_dir(self, criterion: Criterion) -> Path:
        """Where a criterion's corpus lives: its ``corpus`` path, relative to the pack folder."""
        if criterion.corpus is None:
            raise KeyError(f"criterion {criterion.id} has no corpus")
        path = Path(criterion.corpus).expanduser()
        if path.is_absolute() or self._source_dir is None:
            return path
        return self._source_dir / path


def _criterion_context(data: Any, loc: tuple[int | str, ...]) -> tuple[str, int]:
    """'criterion VN-SUP-01' for an error inside the criteria list."""
    if len(loc) >= 2 and loc[0] == "criteria" and isinstance(loc[1], int):
        try:
            return f"criterion {data['criteria'][loc[1]]['id']}", 2
        except (KeyError, IndexError, TypeError):
            return f"criterion #{loc[1] + 1}", 2
    return "", 0


def load_pack(path: Path) -> Pack:
    """Load and validate a pack file (or a pack folder holding ``pack.yaml``)."""
    if path.is_dir():
        path = path / "pack.yaml"
    data = load_yaml_file(path, what="criteria pack")
    try:
        pack = Pack.model_validate(data)
    except ValidationError as exc:
        raise validation_error(exc, data, path, _criterion_context) from None
    pack._source_dir = path.resolve().parent
    return pack


def list_bundled_packs() -> list[Path]:
    root = bundled_packs_dir()
    return sorted(p for p in root.iterdir() if (p / "pack.yaml").is_file())


def resolve_pack(ref: str, base: Path | None = None) -> Path:
    """A pack reference is a bundled pack id or a path (relative to ``base``)."""
    if re.fullmatch(_ID, ref) and (bundled_packs_dir() / ref / "pack.yaml").is_file():
        return bundled_packs_dir() / ref / "pack.yaml"
    candidate = Path(ref) if base is None or Path(ref).is_absolute() else base / ref
    if candidate.is_dir():
        candidate = candidate / "pack.yaml"
    if candidate.is_file():
        return candidate
    names = ", ".join(p.name for p in list_bundled_packs())
    raise InputError(
        f"'packs' must name a bundled pack ({names}) or an existing file (got {ref!r})"
    )
