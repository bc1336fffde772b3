"""The reference sandbox's simulated moderation: what it detects, when it removes, as pure code.

Every decision about a post is drawn once, when the post is created, from a random stream seeded by
the sandbox seed and the post's idempotency key (or content), so the same audit against the same
sandbox seed meets the same platform behaviour whatever the order or timing of its requests. Times
are computed, not waited for: a post's state at any moment follows from its removal time and the
clock, which may be virtual.

Per-modality detection. A text post is classified on its text. A media post (image or speech) is
classified on its caption like a text post, and on its media by a simulated image or speech
classifier: the simulator cannot read pixels or audio, so it learns what the media shows from
the ``X-Sandbox-Simulated-Content`` header (see :mod:`audit.sandbox.app`) and matches the rules
against that, with the rule's proactive probability scaled by its ``modality_factor`` for the
modality. Media without that header are opaque to the simulated classifier. The
``X-Sandbox-Simulated-Variants`` header names the media's variants; the setting
``media_variant_detection`` gives, per image or speech style, the chance that the classifier
reads media in it (default 1): ``{image_low_contrast: 0.0}`` makes it miss every low-contrast
banner, which is then as opaque as media without the header, to detection and to the review of
notices and orders alike (review uses the rule the classifier matched). Either channel can
detect the post: the probability is ``1 - (1 - p_caption) * (1 - p_media)``.

A video is seen by both media classifiers: the image classifier judges what is on screen (at the
rule's ``image`` factor) and the speech classifier what is in the sound track (at its ``speech``
factor), ``p_media = 1 - (1 - p_screen) * (1 - p_track)``. Where the video carries its text
follows from its variant, named in the same header (a video without one carries it on screen
and in the track): ``video_audio_only`` has nothing on screen, ``video_screen_only`` a silent
track, ``video_text_first`` and ``video_text_last`` show it only in their first or last
seconds. With ``video_frames: opening`` the image classifier looks at a video's opening seconds
only (as one that judges a video by its first frames), so text shown only at the end escapes
it. Notices and orders
are reviewed with the rule that matched either channel, as a human reviewer sees both.
"""

from __future__ import annotations

import hashlib
import math
import random
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from audit.durations import parse_duration
from audit.sandbox.statements import StatementSettings
from audit.video import PLAIN_VIDEO, VIDEO_VARIANTS, VideoStyle
from audit.yamlio import load_yaml_file, validation_error

__all__ = [
    "Latency",
    "Media",
    "ModerationRule",
    "PostRecord",
    "SandboxConfig",
    "Submission",
    "load_sandbox_config",
]

Normaliser = Literal["case", "zero_width", "diacritics", "spacing", "homoglyphs"]
_ZERO_WIDTH = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff"), None)
_HOMOGLYPHS = str.maketrans("аеорсухіАВЕКМНОРСТХ", "aeopcyxiABEKMHOPCTX")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Latency(_Strict):
    """Log-normal time from trigger to removal, in platform time (before the time scale)."""

    median: str = "PT2H"
    spread: float = Field(default=0.8, ge=0, le=5)

    def sample(self, rng: random.Random) -> float:
        return parse_duration(self.median) * math.exp(self.spread * rng.gauss(0.0, 1.0))


class ModerationRule(_Strict):
    id: str
    patterns: list[str] = Field(min_length=1)
    requires_any: list[str] = Field(default_factory=list)
    unless_any: list[str] = Field(default_factory=list)
    normalise: list[Normaliser] = Field(default_factory=lambda: list[Normaliser](["case"]))
    action: Literal["remove", "block"] = "remove"
    proactive: float = Field(default=0.0, ge=0, le=1)
    notice: float = Field(default=0.9, ge=0, le=1)
    order: float = Field(default=1.0, ge=0, le=1)
    latency: Latency = Latency()
    notice_latency: Latency = Latency(median="PT4H")
    modality_factor: dict[str, float] = Field(
        default_factory=lambda: {"text": 1.0, "image": 0.5, "speech": 0.2}
    )

    def normalised(self, text: str) -> str:
        steps = set(self.normalise)
        if "zero_width" in steps:
            text = text.translate(_ZERO_WIDTH)
        if "homoglyphs" in steps:
            text = text.translate(_HOMOGLYPHS)
        if "case" in steps:
            text = text.casefold()
        if "diacritics" in steps:
            text = strip_marks(text)
        if "spacing" in steps:
            text = re.sub(r"(?<=\w)[\s.\-_*]+(?=\w\b)|(?<=\b\w)[\s.\-_*]+(?=\w)", "", text)
        return unicodedata.normalize("NFC", text)

    def matches(self, text: str) -> bool:
        seen = self.normalised(text)
        terms = [self.normalised(p) for p in self.patterns]
        if not any(term in seen for term in terms):
            return False
        if any(self.normalised(word) in seen for word in self.unless_any):
            return False
        return not self.requires_any or any(
            self.normalised(signal) in seen for signal in self.requires_any
        )


def strip_marks(text: str) -> str:
    decomposed = unicodedata.normalize("NFD", text.replace("đ", "d").replace("Đ", "D"))
    return "".join(ch for ch in decomposed if unicodedata.category(ch) != "Mn")


class SandboxConfig(_Strict):
    """How the simulated platform moderates.

    Times are platform times; ``time_scale`` divides them. ``video_frames`` is what the
    simulated image classifier sees of a video: ``all`` its frames, or only the ``opening``
    seconds.
    """

    seed: int = 0
    time_scale: float = Field(default=1.0, gt=0)
    token: str | None = None  # the author's account: it posts, reports and withdraws
    # other accounts, which may look at posts (GET /api/v1/posts/{id}) and nothing else
    observer_tokens: list[str] = Field(default_factory=list)
    # logged-out requests may look at posts too
    anonymous_reads: bool = False
    # a removed post is still shown to its author as visible (as many platforms do): only
    # another account or a logged-out reader sees it removed
    removed_visible_to_author: bool = False
    rules: list[ModerationRule] = Field(default_factory=list)
    false_positive_notice: float = Field(default=0.05, ge=0, le=1)
    false_positive_proactive: float = Field(default=0.0, ge=0, le=1)
    false_positive_latency: Latency = Latency(median="PT6H")
    video_frames: Literal["all", "opening"] = "all"
    media_variant_detection: dict[str, float] = Field(default_factory=dict)

    @field_validator("media_variant_detection")
    @classmethod
    def _known_media_variants(cls, value: dict[str, float]) -> dict[str, float]:
        if not value:
            return value
        from audit.media import media_variant_names  # Pillow: only when the setting is used

        known = media_variant_names()
        for name, chance in value.items():
            if name not in known:
                raise ValueError(f"must name media variants ({', '.join(known)}) (got {name!r})")
            if not 0.0 <= chance <= 1.0:
                raise ValueError(f"must map {name} to a chance between 0 and 1 (got {chance!r})")
        return value

    def media_read_chance(self, variants: tuple[str, ...]) -> float:
        """The chance that the simulated media classifier reads media in these variants."""
        return math.prod(self.media_variant_detection.get(name, 1.0) for name in variants)

    @model_validator(mode="after")
    def _accounts(self) -> SandboxConfig:
        if self.token is None and (self.observer_tokens or self.removed_visible_to_author):
            raise ValueError(
                "'observer_tokens' and 'removed_visible_to_author' need 'token' (without it "
                "the sandbox cannot tell its author from anyone else)"
            )
        if self.token is not None and self.token in self.observer_tokens:
            raise ValueError("'observer_tokens' must not hold the author's 'token'")
        return self

    statements: StatementSettings = StatementSettings()  # how decisions are reported

    def rule_for(self, text: str) -> ModerationRule | None:
        for rule in self.rules:
            if rule.matches(text):
                return rule
        return None


def load_sandbox_config(path: Path, **overrides: object) -> SandboxConfig:
    data = load_yaml_file(path, what="sandbox configuration")
    data.update({k: v for k, v in overrides.items() if v is not None})
    try:
        return SandboxConfig.model_validate(data)
    except ValidationError as exc:
        raise validation_error(exc, data, path) from None


def default_config_path() -> Path:
    return Path(__file__).resolve().parent / "default-moderation.yaml"


@dataclass(frozen=True)
class Media:
    """An uploaded file as the sandbox keeps it: its type, digest and size, not its bytes."""

    media_type: str
    sha256: str
    size: int
    simulated_content: str | None  # what the media shows, when the uploader told the simulator
    variants: tuple[str, ...] = ()  # the media's variants, when the uploader told the simulator


@dataclass
class PostRecord:
    """One post on the simulated platform, with the decisions drawn for it (its ground truth)."""

    post_id: str
    idempotency_key: str | None
    text: str
    modality: str
    created_at: float
    rule: str | None
    detected: bool
    proactive_removal_at: float | None
    notice_draw: float
    notice_latency_s: float
    submissions: int = 1
    notices: list[tuple[str, float]] = field(default_factory=list)
    # a filing's idempotency key -> its index in ``notices``: the same key files nothing twice
    notice_keys: dict[str, int] = field(default_factory=dict)
    # filings whose key had been seen: answered with the first filing, nothing applied again
    notice_repeats: int = 0
    notice_removal_at: float | None = None
    withdrawn_at: float | None = None
    media: Media | None = None

    @property
    def removal_at(self) -> float | None:
        times = [t for t in (self.proactive_removal_at, self.notice_removal_at) if t is not None]
        return min(times) if times else None

    def state_at(self, now: float) -> str:
        if self.withdrawn_at is not None and self.withdrawn_at <= now:
            return "withdrawn"
        removal = self.removal_at
        if removal is not None and removal <= now:
            return "removed"
        return "visible"


def decision_stream(seed: int, key: str) -> random.Random:
    digest = hashlib.sha256(f"{seed}\x00{key}".encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


@dataclass(frozen=True)
class Submission:
    text: str  # the post's text, or a media post's caption (may be empty)
    modality: str
    idempotency_key: str | None
    media: Media | None = None


def _media_seen(config: SandboxConfig, sub: Submission) -> str | None:
    """What the simulated classifier reads in the media: the text it shows, unless its variants
    make it miss that (drawn from a stream of its own, so other draws do not move)."""
    if sub.media is None:
        return None
    seen = sub.media.simulated_content
    chance = config.media_read_chance(sub.media.variants)
    if not seen or chance >= 1.0:
        return seen
    draw = decision_stream(config.seed, f"media-read\x00{sub.idempotency_key or seen}").random()
    return seen if draw < chance else None


def _detection(config: SandboxConfig, sub: Submission) -> tuple[ModerationRule | None, float]:
    """The rule that matches the post (media first, then caption) and the chance of detection."""
    caption = config.rule_for(sub.text) if sub.text else None
    seen = _media_seen(config, sub)
    media = config.rule_for(seen) if seen else None
    rule = media or caption
    if rule is None:
        return None, config.false_positive_proactive
    p_caption = caption.proactive * caption.modality_factor.get("text", 0.0) if caption else 0.0
    if media is None:
        return rule, p_caption
    variants = sub.media.variants if sub.media is not None else ()
    p_media = _media_chance(config, media, sub.modality, variants)
    return rule, 1.0 - (1.0 - p_caption) * (1.0 - p_media)


def _video_style(variants: tuple[str, ...]) -> VideoStyle:
    named = [VIDEO_VARIANTS[name] for name in variants if name in VIDEO_VARIANTS]
    return named[0] if named else VIDEO_VARIANTS[PLAIN_VIDEO]


def _media_chance(
    config: SandboxConfig, rule: ModerationRule, modality: str, variants: tuple[str, ...]
) -> float:
    """The chance the simulated classifiers see the rule's content in the media."""
    factor = rule.modality_factor
    if modality != "video":
        return rule.proactive * factor.get(modality, 0.0)
    style = _video_style(variants)
    seen = style.screen != "none" and (config.video_frames == "all" or style.screen != "last")
    p_screen = rule.proactive * factor.get("image", 0.0) if seen else 0.0
    p_track = rule.proactive * factor.get("speech", 0.0) if style.speech else 0.0
    return 1.0 - (1.0 - p_screen) * (1.0 - p_track)


def decide_post(
    config: SandboxConfig, post_id: str, sub: Submission, now: float
) -> tuple[PostRecord, bool]:
    """The post's fate, drawn at creation; returns (record, blocked at upload)."""
    digest = sub.media.sha256 if sub.media is not None else ""
    rng = decision_stream(config.seed, sub.idempotency_key or sub.text + digest)
    rule, proactive_p = _detection(config, sub)
    detected = rng.random() < proactive_p
    latency = (rule.latency if rule else config.false_positive_latency).sample(rng)
    notice_draw = rng.random()
    notice_latency = (rule.notice_latency if rule else config.false_positive_latency).sample(rng)
    blocked = detected and rule is not None and rule.action == "block"
    record = PostRecord(
        post_id=post_id,
        idempotency_key=sub.idempotency_key,
        text=sub.text,
        modality=sub.modality,
        created_at=now,
        rule=rule.id if rule else None,
        detected=detected,
        proactive_removal_at=now + latency / config.time_scale if detected else None,
        notice_draw=notice_draw,
        notice_latency_s=notice_latency / config.time_scale,
        media=sub.media,
    )
    return record, blocked


def apply_notice(config: SandboxConfig, post: PostRecord, kind: str, now: float) -> None:
    """A report or order: the platform acts on it with the rule's probability."""
    post.notices.append((kind, now))
    rule = next((r for r in config.rules if r.id == post.rule), None)
    if rule is None:
        acts = post.notice_draw < config.false_positive_notice
    else:
        acts = post.notice_draw < (rule.order if kind == "order" else rule.notice)
    if acts and post.notice_removal_at is None:
        post.notice_removal_at = now + post.notice_latency_s
