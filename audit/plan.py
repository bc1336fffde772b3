"""Plans: which packs, against which targets, how many probes, when and how often to look.

A plan file is YAML with a top-level ``plan:`` mapping; see ``examples/plan-sandbox.yaml``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from audit.durations import IsoDuration
from audit.errors import InputError
from audit.polling import PollingPolicy
from audit.yamlio import load_yaml_file, validation_error

__all__ = [
    "Observer",
    "Plan",
    "Sample",
    "Schedule",
    "SecretRef",
    "Target",
    "load_plan",
    "plan_json_schema",
]

_NAME = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"


class _Strict(BaseModel):
    # attribute docstrings become the descriptions in schemas/plan.schema.json
    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)


class SecretRef(_Strict):
    """Where a secret comes from: an environment variable or a file, never the plan itself."""

    env: str | None = None
    """Name of the environment variable holding the secret."""
    file: Path | None = None
    """File holding the secret (relative to the plan file); surrounding whitespace is dropped."""

    @model_validator(mode="after")
    def _one_source(self) -> SecretRef:
        if (self.env is None) == (self.file is None):
            raise ValueError("must set exactly one of 'env' or 'file'")
        return self

    def value(self, target: str, name: str) -> str:
        if self.env is not None:
            value = os.environ.get(self.env, "").strip()
            if not value:
                raise InputError(
                    f"target {target}: secret '{name}' comes from environment variable "
                    f"{self.env}, which is not set"
                )
            return value
        assert self.file is not None
        try:
            value = self.file.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise InputError(
                f"target {target}: secret '{name}' cannot be read ({exc.strerror})",
                source=self.file,
            ) from None
        if not value:
            raise InputError(f"target {target}: secret '{name}' is empty", source=self.file)
        return value


ActionName = Literal[
    "submit", "upload", "processing", "lookup", "status", "observe", "notice", "order", "withdraw"
]

# the secret an observer's ``token`` is known by (a name, not a value)
OBSERVER_SECRET = "observer_token"  # noqa: S105


class Observer(_Strict):
    """Who looks at the posts in the public's place, so that a removal shown to the public but
    not to its author (or the reverse) is seen as the public sees it.

    ``anonymous``: logged-out requests. ``account``: a second account the platform cannot tie
    to the author (its ``token``; a profile target may name other secrets for it). With
    ``author_view`` (the default) every look is made in both views: the observer's decides and
    a disagreement between them is reported.
    """

    kind: Literal["anonymous", "account"]
    token: SecretRef | None = None
    author_view: bool = True

    @model_validator(mode="after")
    def _token_fits(self) -> Observer:
        if self.kind == "anonymous" and self.token is not None:
            raise ValueError("an anonymous observer has no 'token'")
        return self


class ActionLimits(_Strict):
    """How one action may use the target: its own requests per second and its attempts."""

    rate_limit: float | None = Field(default=None, gt=0)
    """Requests per second for this action, on top of the target's rate_limit."""
    attempts: int | None = Field(default=None, ge=1, le=20)
    """Attempts per request of this action (retries + 1), overriding the profile's."""


class Target(_Strict):
    """A platform environment and how to reach it.

    ``adapter: sandbox`` speaks the reference sandbox's API. ``adapter: profile`` speaks the API a
    target profile describes (``profile``: a built-in name such as ``matrix`` or a YAML file),
    with the profile's ``variables`` and ``secrets`` filled in here. Secrets are references
    (environment variables or files), resolved only when the run needs them.
    """

    name: Annotated[str, Field(pattern=_NAME)]
    """The target's name in run ids, scorecards and the evidence; unique within the plan."""
    adapter: Literal["sandbox", "profile"] = "sandbox"
    """How to speak to the platform: the reference sandbox's API, or a target profile."""
    profile: str | None = None
    """Target profile: a built-in name (sandbox, matrix, mastodon) or a YAML file relative to
    the plan; implies adapter: profile."""
    base_url: Annotated[str, Field(pattern=r"^https?://[^\s/]+")]
    """The platform API's base URL (http or https)."""
    environment: Literal["sandbox", "production"] = "sandbox"
    """A production target is refused unless the run is given --allow-production."""
    token_env: str | None = None
    """Environment variable holding the bearer token (read at run time, never stored)."""
    token_file: Path | None = None
    """File holding the bearer token, relative to the plan file."""
    variables: dict[str, str] = Field(default_factory=dict)
    """Values of the profile's variables, overriding the profile's defaults."""
    secrets: dict[str, SecretRef] = Field(default_factory=dict)
    """The profile's secrets, each an environment variable or a file; never the value itself."""
    rate_limit: float | None = Field(default=50.0, gt=0)
    """Requests per second to this target, all actions together (null: no limit)."""
    timeout: float = Field(default=30.0, gt=0, le=600)
    """Seconds one request may take before it counts as a timeout (a fault, retried)."""
    concurrency: int = Field(default=16, ge=1, le=1024)
    """Requests in flight at once."""
    verify_tls: bool = True
    """Check the target's TLS certificate."""
    actions: dict[ActionName, ActionLimits] = Field(default_factory=dict)
    """Per action (submit, upload, processing, lookup, status, observe, notice, order,
    withdraw): a rate limit of its own (on top of rate_limit) and its attempts, overriding the
    profile's; e.g. a platform that limits posting but not looking."""
    observer: Observer | None = None
    """Who makes the status looks (anonymous, or a second account); without one they are made
    with the author's credentials, and the methodology says so."""

    def action_limits(self) -> dict[str, tuple[float | None, int | None]]:
        """``actions`` as the HTTP client takes them: action -> (rate limit, attempts)."""
        return {name: (a.rate_limit, a.attempts) for name, a in self.actions.items()}

    @model_validator(mode="before")
    @classmethod
    def _profile_implies_adapter(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("profile") and "adapter" not in data:
            return {**data, "adapter": "profile"}
        return data

    @model_validator(mode="after")
    def _adapter_fields(self) -> Target:
        if self.adapter == "profile" and not self.profile:
            raise ValueError("adapter 'profile' needs 'profile' (a built-in name or a YAML file)")
        if self.adapter == "sandbox" and (self.profile or self.variables or self.secrets):
            raise ValueError("'profile', 'variables' and 'secrets' need adapter: profile")
        if "token" in self.secrets and (self.token_env or self.token_file):
            raise ValueError("give the token either as secrets.token or token_env/token_file")
        observer = self.observer
        if observer is not None and observer.token is not None and OBSERVER_SECRET in self.secrets:
            raise ValueError(
                f"give the observer's token either as observer.token or secrets.{OBSERVER_SECRET}"
            )
        if (
            self.adapter == "sandbox"
            and observer is not None
            and observer.kind == "account"
            and observer.token is None
        ):
            raise ValueError(
                "an observer account needs 'observer.token' ({env: ...} or {file: ...})"
            )
        return self

    def secret_refs(self) -> dict[str, SecretRef]:
        """Every secret reference, with token_env/token_file as the secret named 'token'."""
        refs = dict(self.secrets)
        if self.observer is not None and self.observer.token is not None:
            refs[OBSERVER_SECRET] = self.observer.token
        if self.token_env:
            refs["token"] = SecretRef(env=self.token_env)
        elif self.token_file:
            refs["token"] = SecretRef(file=self.token_file)
        return refs

    def secret_values(self) -> dict[str, str]:
        """The secrets' values, read now from the environment or files."""
        return {name: ref.value(self.name, name) for name, ref in self.secret_refs().items()}

    def token(self) -> str | None:
        """The bearer token, if any; for a profile target also checks the profile, its
        variables and every secret, so a missing one fails before the run starts."""
        if self.adapter == "profile":
            from audit.adapters.profile_load import check_target

            check_target(self)
            return self.secret_values().get("token")
        if self.token_env:
            value = os.environ.get(self.token_env)
            if not value:
                raise InputError(
                    f"target {self.name}: environment variable {self.token_env} is not set"
                )
            return value.strip()
        if self.token_file:
            try:
                return self.token_file.read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise InputError(
                    f"target {self.name}: token file cannot be read ({exc.strerror})",
                    source=self.token_file,
                ) from None
        return None

    def observer_token(self) -> str | None:
        """The observer account's token (read now), or None for no observer or an anonymous one."""
        if self.observer is None or self.observer.token is None:
            return None
        return self.observer.token.value(self.name, "observer.token")

    def resolved(self, plan_file: Path) -> Target:
        """Files named relative to the plan (token file, secret files, profile) made absolute."""
        base = plan_file.parent

        def fix(path: Path) -> Path:
            return path if path.is_absolute() else base / path

        update: dict[str, Any] = {}
        if self.token_file:
            update["token_file"] = fix(self.token_file)
        if any(ref.file for ref in self.secrets.values()):
            update["secrets"] = {
                name: ref.model_copy(update={"file": fix(ref.file)}) if ref.file else ref
                for name, ref in self.secrets.items()
            }
        seen = self.observer.token if self.observer is not None else None
        if self.observer is not None and seen is not None and seen.file is not None:
            token = seen.model_copy(update={"file": fix(seen.file)})
            update["observer"] = self.observer.model_copy(update={"token": token})
        if self.profile:
            from audit.adapters.profile_load import builtin_profiles, resolve_profile

            try:
                path = resolve_profile(self.profile, base)
            except InputError as exc:
                raise InputError(str(exc), source=plan_file, where=f"target {self.name}") from None
            if self.profile not in builtin_profiles():
                update["profile"] = str(path)
        return self.model_copy(update=update) if update else self


class Sample(_Strict):
    """How many probes per criterion, and in what form.

    ``variant_arms`` maps a variant (``strip_diacritics``) or a composition (``teencode+spacing``)
    to a number of violating text probes carrying exactly it, counted within
    ``violating_per_criterion``, for each chosen criterion that declares those variants; or a
    media style alone (``image_low_contrast``, ``speech_fast``, ``image_plain``...) to a number
    of violating image or speech probes in that style, for each criterion of that modality.
    ``image_share``, ``speech_share`` and ``video_share`` of the probes outside the arms
    (violating and controls) are posted as a banner image, as speech or as a short video, for
    criteria that declare that modality; of the remaining violating text posts a
    ``variant_share`` carry one of the criterion's declared variants, the rest are clean. Only
    variants and modalities a criterion declares are used.
    """

    violating_per_criterion: int = Field(default=60, ge=1, le=1_000_000)
    """Violating probes per criterion (59 is the least that can show 95 % at 95 % confidence
    with no failure: see `platform-audit plan-size`)."""
    controls_per_criterion: int = Field(default=20, ge=0, le=1_000_000)
    """Benign control probes per criterion, for the over-removal finding."""
    variant_share: float = Field(default=0.0, ge=0, le=1)
    """Share of the violating text probes outside the arms that carry one declared variant."""
    variant_arms: dict[str, Annotated[int, Field(ge=1, le=1_000_000)]] = Field(default_factory=dict)
    """Variant or composition (teencode+spacing) -> violating text probes carrying exactly it,
    counted within violating_per_criterion."""
    image_share: float = Field(default=0.0, ge=0, le=1)
    """Share of the probes outside the arms posted as a banner image (criteria declaring it)."""
    speech_share: float = Field(default=0.0, ge=0, le=1)
    """Share of the probes outside the arms posted as speech (criteria declaring it)."""
    video_share: float = Field(default=0.0, ge=0, le=1)
    """Share of the probes outside the arms posted as a short video (criteria declaring it)."""

    @model_validator(mode="after")
    def _shares_fit(self) -> Sample:
        if self.image_share + self.speech_share + self.video_share > 1:
            raise ValueError(
                "image_share, speech_share and video_share must add up to at most 1 "
                f"(got {self.image_share:g} + {self.speech_share:g} + {self.video_share:g})"
            )
        arms = sum(self.variant_arms.values())
        if arms > self.violating_per_criterion:
            raise ValueError(
                "variant_arms must fit within violating_per_criterion "
                f"(got {arms} arm probes for {self.violating_per_criterion})"
            )
        return self


class Schedule(_Strict):
    """When probes are posted, and when a recurring plan runs again."""

    submission_window: IsoDuration = "PT10M"
    """Submissions are spread evenly over this platform-time window (divided by time_scale)."""
    jitter: float = Field(default=0.5, ge=0, le=1)
    """How far, as a share of one slot, each submission may move from its even slot."""
    cron: str | None = None
    """A five-field cron expression (UTC): `poll` starts a new run at each slot."""


class Plan(_Strict):
    """Packs, targets, sample sizes, seed, schedule and polling: what a run executes."""

    name: Annotated[str, Field(pattern=_NAME)]
    """The plan's name: in run ids, `runs`, `trend PLAN_NAME` and recurring slots."""
    packs: list[str] = Field(min_length=1)
    """Criteria packs: bundled ids (vn-superstition) or paths relative to the plan file."""
    criteria: list[str] | None = None
    """A subset of the packs' criteria ids (null: every criterion)."""
    targets: list[Target] = Field(min_length=1)
    """Platforms to audit: one run per (pack, target)."""
    seed: int = Field(default=0, ge=-(2**63), lt=2**63)  # stored as a 64-bit integer
    """Same seed, same probes, schedule and looks."""
    sample: Sample = Sample()
    """How many probes per criterion, and in what form."""
    schedule: Schedule = Schedule()
    """When probes are posted."""
    polling: PollingPolicy = PollingPolicy()
    """When and how often each probe is looked at."""
    grace: float = Field(default=0.25, ge=0, le=10)
    """After the deadline, keep looking for this share of it, to tell late from never."""
    time_scale: float = Field(default=1.0, gt=0)
    """Divide every deadline and window by this (1 for a real audit; match the sandbox's
    --time-scale); a scorecard of a compressed run says so."""
    min_measured_share: float | None = Field(default=None, gt=0, le=1)
    """Overrides every pack's floor on the share of planned violating probes that must be
    measured for a verdict other than INCONCLUSIVE (null: the pack's, 0.9 by default)."""
    notice_reason: str = "This post offers a prohibited service under {instrument}, {article}."
    """The reason sent with each notice or order; {instrument} and {article} are the
    criterion's legal reference."""
    give_up_after: IsoDuration | None = None
    """Wall-clock time without a working answer from the target after which a run ends
    (failed, with the reason); null: 5 % of the shortest deadline as run, at least 30 s."""
    report_language: Literal["en", "vi"] = "en"
    """The language of the run's scorecards and terminal summary (`report --lang` chooses
    another)."""

    @field_validator("targets")
    @classmethod
    def _unique_targets(cls, value: list[Target]) -> list[Target]:
        names = [t.name for t in value]
        if len(names) != len(set(names)):
            raise ValueError("target names must be unique")
        return value


class PlanFile(_Strict):
    plan: Plan


def load_plan(path: Path) -> Plan:
    data = load_yaml_file(path, what="plan")
    try:
        plan = PlanFile.model_validate(data).plan
    except ValidationError as exc:
        raise validation_error(exc, data, path) from None
    if plan.schedule.cron is not None:
        from audit.schedule import parse_cron

        parse_cron(plan.schedule.cron, path)  # a bad expression fails now, not at the first poll
    fixed = [t.resolved(path) for t in plan.targets]
    return plan.model_copy(update={"targets": fixed})


def plan_dump(plan: Plan) -> dict[str, Any]:
    return plan.model_dump(mode="json")


def plan_json_schema() -> dict[str, Any]:
    """The JSON Schema of a plan file (``schemas/plan.schema.json``), from the model."""
    schema = PlanFile.model_json_schema()
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://platform-audit.invalid/schemas/plan.schema.json",
        "title": "platform-audit plan",
        **{k: v for k, v in schema.items() if k != "title"},
    }
