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

__all__ = ["Plan", "Sample", "Schedule", "SecretRef", "Target", "load_plan"]

_NAME = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SecretRef(_Strict):
    """Where a secret comes from: an environment variable or a file, never the plan itself."""

    env: str | None = None
    file: Path | None = None

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


ActionName = Literal["submit", "lookup", "status", "notice", "order", "withdraw"]


class ActionLimits(_Strict):
    """How one action may use the target: its own requests per second and its attempts."""

    rate_limit: float | None = Field(default=None, gt=0)
    attempts: int | None = Field(default=None, ge=1, le=20)


class Target(_Strict):
    """A platform environment and how to reach it.

    ``adapter: sandbox`` speaks the reference sandbox's API. ``adapter: profile`` speaks the API a
    target profile describes (``profile``: a built-in name such as ``matrix`` or a YAML file),
    with the profile's ``variables`` and ``secrets`` filled in here. Secrets are references
    (environment variables or files), resolved only when the run needs them.
    """

    name: Annotated[str, Field(pattern=_NAME)]
    adapter: Literal["sandbox", "profile"] = "sandbox"
    profile: str | None = None
    base_url: Annotated[str, Field(pattern=r"^https?://[^\s/]+")]
    environment: Literal["sandbox", "production"] = "sandbox"
    token_env: str | None = None
    token_file: Path | None = None
    variables: dict[str, str] = Field(default_factory=dict)
    secrets: dict[str, SecretRef] = Field(default_factory=dict)
    rate_limit: float | None = Field(default=50.0, gt=0)
    timeout: float = Field(default=30.0, gt=0, le=600)
    concurrency: int = Field(default=16, ge=1, le=1024)
    verify_tls: bool = True
    # per action: a rate limit of its own (on top of rate_limit) and its attempts, overriding
    # the profile's; e.g. a platform that limits posting but not looking
    actions: dict[ActionName, ActionLimits] = Field(default_factory=dict)

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
        return self

    def secret_refs(self) -> dict[str, SecretRef]:
        """Every secret reference, with token_env/token_file as the secret named 'token'."""
        refs = dict(self.secrets)
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
    ``violating_per_criterion``, for each chosen criterion that declares those variants.
    ``image_share`` and ``speech_share`` of the probes outside the arms (violating and controls)
    are posted as a banner image or as speech, for criteria that declare that modality; of the
    remaining violating text posts a ``variant_share`` carry one of the criterion's declared
    variants, the rest are clean. Only variants and modalities a criterion declares are used.
    """

    violating_per_criterion: int = Field(default=60, ge=1, le=1_000_000)
    controls_per_criterion: int = Field(default=20, ge=0, le=1_000_000)
    variant_share: float = Field(default=0.0, ge=0, le=1)
    variant_arms: dict[str, Annotated[int, Field(ge=1, le=1_000_000)]] = Field(default_factory=dict)
    image_share: float = Field(default=0.0, ge=0, le=1)
    speech_share: float = Field(default=0.0, ge=0, le=1)

    @model_validator(mode="after")
    def _shares_fit(self) -> Sample:
        if self.image_share + self.speech_share > 1:
            raise ValueError(
                "image_share and speech_share must add up to at most 1 "
                f"(got {self.image_share:g} + {self.speech_share:g})"
            )
        arms = sum(self.variant_arms.values())
        if arms > self.violating_per_criterion:
            raise ValueError(
                "variant_arms must fit within violating_per_criterion "
                f"(got {arms} arm probes for {self.violating_per_criterion})"
            )
        return self


class Schedule(_Strict):
    submission_window: IsoDuration = "PT10M"
    jitter: float = Field(default=0.5, ge=0, le=1)
    cron: str | None = None


class Plan(_Strict):
    name: Annotated[str, Field(pattern=_NAME)]
    packs: list[str] = Field(min_length=1)
    criteria: list[str] | None = None
    targets: list[Target] = Field(min_length=1)
    seed: int = Field(default=0, ge=-(2**63), lt=2**63)  # stored as a 64-bit integer
    sample: Sample = Sample()
    schedule: Schedule = Schedule()
    polling: PollingPolicy = PollingPolicy()
    grace: float = Field(default=0.25, ge=0, le=10)
    time_scale: float = Field(default=1.0, gt=0)
    # overrides every pack's floor on the measured share of planned violating probes
    min_measured_share: float | None = Field(default=None, gt=0, le=1)
    notice_reason: str = "This post offers a prohibited service under {instrument}, {article}."
    # wall-clock time without a working answer from the target after which a run ends (failed,
    # with the reason); default: 5 % of the shortest deadline as run, at least 30 s
    give_up_after: IsoDuration | None = None
    # the language of the run's scorecards and summary (`report --lang` chooses another)
    report_language: Literal["en", "vi"] = "en"

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
