"""Plans: which packs, against which targets, how many probes, when and how often to look.

A plan file is YAML with a top-level ``plan:`` mapping; see ``examples/plan-sandbox.yaml``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from audit.durations import parse_duration
from audit.errors import InputError
from audit.polling import PollingPolicy
from audit.yamlio import load_yaml_file, validation_error

__all__ = ["Plan", "Sample", "Schedule", "Target", "load_plan"]

_NAME = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Target(_Strict):
    """A platform environment and how to reach it."""

    name: Annotated[str, Field(pattern=_NAME)]
    adapter: Literal["sandbox"] = "sandbox"
    base_url: Annotated[str, Field(pattern=r"^https?://[^\s/]+")]
    environment: Literal["sandbox", "production"] = "sandbox"
    token_env: str | None = None
    token_file: Path | None = None
    rate_limit: float | None = Field(default=50.0, gt=0)
    timeout: float = Field(default=30.0, gt=0, le=600)
    concurrency: int = Field(default=16, ge=1, le=1024)
    verify_tls: bool = True

    def token(self) -> str | None:
        """The bearer token from the environment or a file; never stored in the plan."""
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


class Sample(_Strict):
    violating_per_criterion: int = Field(default=60, ge=1, le=1_000_000)
    controls_per_criterion: int = Field(default=20, ge=0, le=1_000_000)


class Schedule(_Strict):
    submission_window: str = "PT10M"
    jitter: float = Field(default=0.5, ge=0, le=1)
    cron: str | None = None

    @field_validator("submission_window")
    @classmethod
    def _duration(cls, value: str) -> str:
        try:
            parse_duration(value)
        except ValueError:
            raise ValueError(f"must be a positive ISO 8601 duration such as PT10M (got {value!r})") from None
        return value


class Plan(_Strict):
    name: Annotated[str, Field(pattern=_NAME)]
    packs: list[str] = Field(min_length=1)
    criteria: list[str] | None = None
    targets: list[Target] = Field(min_length=1)
    seed: int = 0
    sample: Sample = Sample()
    schedule: Schedule = Schedule()
    polling: PollingPolicy = PollingPolicy()
    grace: float = Field(default=0.25, ge=0, le=10)
    time_scale: float = Field(default=1.0, gt=0)
    notice_reason: str = "This post offers a prohibited service under {instrument}, {article}."

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
    base = path.parent
    fixed = [
        t.model_copy(update={"token_file": base / t.token_file})
        if t.token_file and not t.token_file.is_absolute()
        else t
        for t in plan.targets
    ]
    return plan.model_copy(update={"targets": fixed})


def plan_dump(plan: Plan) -> dict[str, Any]:
    return plan.model_dump(mode="json")
