"""The shape of a target profile: a platform's API described in YAML, validated here.

A profile says how to authenticate, how to post a probe, how to read the answer (accepted,
rejected at submission, or an error), how to look at a post later (visible, removed, gone or
unknown), how to file a notice and how to withdraw the post. Rules are tried in order and the
first whose ``when`` holds decides; an answer no rule matches is ``error`` (submit, lookup) or
``unknown`` (status), never a removal. See docs/audit-your-sandbox.md.
"""

from __future__ import annotations

import re
from functools import cached_property
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from audit.adapters.profile_template import tree_references
from audit.durations import IsoDuration, parse_duration

__all__ = [
    "AuthSpec",
    "BearerAuth",
    "CheckStep",
    "FieldTest",
    "LoginAuth",
    "LookupRule",
    "MediaModality",
    "MediaSubmitSpec",
    "MultipartFile",
    "NoAuth",
    "NoticeRule",
    "OAuth2ClientCredentials",
    "Profile",
    "RateSpec",
    "ReadySpec",
    "RequestSpec",
    "SetupStep",
    "StatusRule",
    "SubmitRule",
    "SubmitSpec",
    "UploadSpec",
    "When",
    "WithdrawRule",
]

_IDENT = r"^[A-Za-z_][A-Za-z0-9_]*$"
Ident = Annotated[str, Field(pattern=_IDENT)]
Method = Literal["GET", "POST", "PUT", "PATCH", "DELETE"]
_STATUS_CLASS = re.compile(r"^[1-5]xx$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class RateSpec(_Strict):
    """At most ``requests`` per ``per`` (an ISO 8601 duration), e.g. 30 per PT30M."""

    requests: int = Field(ge=1)
    per: IsoDuration

    @property
    def per_second(self) -> float:
        return self.requests / parse_duration(self.per)


Rate = Annotated[float, Field(gt=0)] | RateSpec


def rate_per_second(rate: float | RateSpec | None) -> float | None:
    if rate is None or isinstance(rate, float | int):
        return rate
    return rate.per_second


class MultipartFile(_Strict):
    """A file part of a multipart body: the probe's media, with templated name and type."""

    content: Literal["media"] = Field(description="What the part holds: the probe's media.")
    filename: str = Field(default="{media.name}", description="Template of the file name.")
    type: str = Field(default="{media.type}", description="Template of the part's type.")


class RequestSpec(_Strict):
    """One HTTP request. Strings are templates; ``path`` is relative to the base URL.

    A body is one of: ``json`` (strings are templates, ``{media.base64}`` puts the media in a
    field), ``form`` (URL-encoded), ``multipart`` (text fields and the media as a file part),
    or ``content: media`` (the media's raw bytes; set the Content-Type header).
    """

    method: Method
    path: str = Field(description="Path on the target's base URL, starting with '/'.")
    query: dict[str, str] = Field(default_factory=dict)
    headers: dict[str, str] = Field(default_factory=dict)
    body: Any = Field(default=None, alias="json", description="JSON body; strings are templates.")
    form: dict[str, str] | None = Field(default=None, description="Form-encoded body.")
    multipart: dict[str, str | MultipartFile] | None = Field(
        default=None,
        description="Multipart form body: field -> template, and one file part {content: media}.",
    )
    content: Literal["media"] | None = Field(
        default=None, description="'media': the body is the probe's media, as raw bytes."
    )
    auth: Literal["author", "notifier", "observer", "none"] = "author"
    timeout: float | None = Field(default=None, gt=0, le=600)
    rate_limit: Rate | None = None
    attempts: int | None = Field(
        default=None,
        ge=1,
        le=20,
        description="Attempts for this request (default: the profile's retry.attempts); a "
        "plan's target `actions` overrides it.",
    )

    @field_validator("path")
    @classmethod
    def _relative_path(cls, value: str) -> str:
        if not value.startswith("/") or value.startswith("//"):
            raise ValueError(f"must be a path starting with a single '/' (got {value!r})")
        return value

    @model_validator(mode="after")
    def _one_body(self) -> RequestSpec:
        bodies = [
            name
            for name, value in (
                ("json", self.body),
                ("form", self.form),
                ("multipart", self.multipart),
                ("content", self.content),
            )
            if value is not None
        ]
        if len(bodies) > 1:
            raise ValueError(
                "a request has one body: json, form, multipart or content "
                f"(got {', '.join(bodies)})"
            )
        files = [k for k, v in (self.multipart or {}).items() if isinstance(v, MultipartFile)]
        if self.multipart is not None and len(files) != 1:
            raise ValueError(
                "a multipart body has one file part {content: media} "
                f"(got {', '.join(files) or 'none'})"
            )
        return self

    @cached_property  # asked of every request a media post makes: its templates parsed once
    def carries_media(self) -> bool:
        """Whether the request sends the media's bytes (raw, as a file part, or base64)."""
        if self.content == "media":
            return True
        if any(isinstance(v, MultipartFile) for v in (self.multipart or {}).values()):
            return True
        texts = [*self.query.values(), *self.headers.values(), *(self.form or {}).values()]
        texts += [v for v in (self.multipart or {}).values() if isinstance(v, str)]
        return "media.base64" in tree_references([self.body, texts])


_OPS = ("equals", "one_of", "exists", "matches", "empty")


class FieldTest(_Strict):
    """One test on a value of the response body, picked by a JMESPath expression."""

    equals: Any = None
    one_of: list[Any] | None = None
    exists: bool | None = None
    matches: str | None = Field(default=None, description="A regular expression (search).")
    empty: bool | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> FieldTest:
        chosen = [op for op in _OPS if op in self.model_fields_set]
        if len(chosen) != 1:
            raise ValueError(
                f"must set exactly one of {', '.join(_OPS)} (got {', '.join(chosen) or 'none'})"
            )
        if self.matches is not None:
            try:
                re.compile(self.matches)
            except re.error as exc:
                raise ValueError(f"'matches' is not a valid regular expression ({exc})") from None
        return self

    @property
    def op(self) -> str:
        return next(op for op in _OPS if op in self.model_fields_set)


class When(_Strict):
    """A condition on a response: its status code and tests on body fields (all must hold)."""

    status: list[int | str] | None = Field(
        default=None, description="Status codes (200) or classes ('2xx'); any if omitted."
    )
    fields: dict[str, FieldTest] = Field(
        default_factory=dict, description="JMESPath expression -> test on its value."
    )

    @field_validator("status", mode="before")
    @classmethod
    def _listify(cls, value: Any) -> Any:
        return [value] if isinstance(value, int | str) else value

    @field_validator("status")
    @classmethod
    def _codes(cls, value: list[int | str] | None) -> list[int | str] | None:
        for code in value or []:
            ok = (isinstance(code, int) and 100 <= code <= 599) or (
                isinstance(code, str) and _STATUS_CLASS.match(code)
            )
            if not ok:
                raise ValueError(f"must hold status codes such as 200 or '4xx' (got {code!r})")
        return value


class _Rule(_Strict):
    when: When
    detail: str | None = Field(default=None, description="JMESPath: text kept with the result.")


class SubmitRule(_Rule):
    result: Literal["accepted", "rejected", "error"]


class LookupRule(_Rule):
    result: Literal["accepted", "rejected", "not_found", "error"]


class StatusRule(_Rule):
    result: Literal["visible", "removed", "gone", "unknown"]


class NoticeRule(_Rule):
    result: Literal["filed", "failed"]
    reference: str | None = Field(default=None, description="JMESPath: the report's id.")


class WithdrawRule(_Rule):
    result: Literal["withdrawn", "failed"]


class _Section(_Strict):
    request: RequestSpec


class SubmitSpec(_Section):
    capture: dict[Ident, str] = Field(
        default_factory=dict, description="Name -> JMESPath on an accepted response."
    )
    post: dict[Ident, str] = Field(
        min_length=1, description="The post's identity: name -> template over vars/captured."
    )
    outcomes: list[SubmitRule] = Field(min_length=1)
    created_at: str | None = Field(
        default=None,
        description="JMESPath: the platform's own creation time of the post in an accepted "
        "answer (ISO 8601 or epoch seconds/milliseconds), recorded beside the tool's send time.",
    )
    created_at_unit: Literal["auto", "s", "ms"] = "auto"


class ReadySpec(_Section):
    """Polling an uploaded file until the platform has processed it (e.g. Mastodon's 202, then
    GET /api/v1/media/:id until its url is set). ``pending`` answers mean "not yet"; any other
    answer that is not ``until`` is a fault of the submission."""

    until: When
    pending: When
    every: IsoDuration = Field(default="PT1S", description="Time between looks.")
    within: IsoDuration = Field(default="PT5M", description="Give up (a fault) after this.")


class UploadSpec(_Section):
    """The first step of a two-step post: upload the media, capture its id or URI. An answer
    that does not satisfy ``expect`` is a fault of the submission (tried again like any
    other), never a refusal by the platform."""

    expect: When
    capture: dict[Ident, str] = Field(
        min_length=1, description="Name -> JMESPath on the answer; templates use {uploaded.NAME}."
    )
    ready: ReadySpec | None = None


class MediaSubmitSpec(SubmitSpec):
    """How a probe of one modality is posted with its media: optionally an upload first, then
    the post (which may refer to ``{uploaded.NAME}`` and ``{media.*}``)."""

    upload: UploadSpec | None = None


MediaModality = Literal["image", "speech", "video"]


class LookupSpec(_Section):
    outcomes: list[LookupRule] = Field(min_length=1)


class StatusSpec(_Section):
    outcomes: list[StatusRule] = Field(min_length=1)


class NoticeSpec(_Section):
    outcomes: list[NoticeRule] = Field(min_length=1)


class WithdrawSpec(_Section):
    outcomes: list[WithdrawRule] = Field(min_length=1)


class CheckStep(_Section):
    """A request whose answer must satisfy ``expect`` before anything is posted (preflight):
    e.g. that the author may post in the room. If it fails, submissions are errors (the run
    cannot measure), never refusals that would count for the platform."""

    name: str = Field(min_length=1)
    expect: When
    only_with_observer: bool = Field(
        default=False,
        description="Made only for a target that names an observer (e.g. the observer joins "
        "the room); a step made as the observer (auth: observer) must say so.",
    )


class SetupStep(CheckStep):
    """A request made once before the first request that needs its captured variables.

    It runs only when at least one variable it captures has no value yet, so a target that
    supplies the value (e.g. an existing room) skips it.
    """

    capture: dict[Ident, str] = Field(min_length=1)


class VariableSpec(_Strict):
    description: str = ""
    default: str | None = None


class SecretSpec(_Strict):
    description: str = ""
    required: bool = True


class NoAuth(_Strict):
    kind: Literal["none"]


class BearerAuth(_Strict):
    kind: Literal["bearer"]
    token: str = Field(description="Template, usually '{secrets.token}'.")
    header: str = "Authorization"
    scheme: str = "Bearer"


class _TokenAuth(_Strict):
    token: str = Field(default="access_token", description="JMESPath: the token in the answer.")
    expires_in: str | None = Field(
        default="expires_in", description="JMESPath: lifetime of the token, if the answer says."
    )
    expires_in_unit: Literal["s", "ms"] = "s"
    refresh_margin: float = Field(default=30.0, ge=0, description="Refresh this early (seconds).")
    header: str = "Authorization"
    scheme: str = "Bearer"


class OAuth2ClientCredentials(_TokenAuth):
    """RFC 6749 section 4.4; the token is fetched again before it expires or after a 401."""

    kind: Literal["oauth2_client_credentials"]
    token_url: str = Field(description="A path on the base URL, or an absolute https:// URL.")
    client_id: str
    client_secret: str
    scope: str | None = None
    client_auth: Literal["basic", "body"] = "basic"

    @field_validator("token_url")
    @classmethod
    def _url(cls, value: str) -> str:
        relative = value.startswith("/") and not value.startswith("//")
        if not (relative or re.match(r"^https?://[^\s/]+", value)):
            raise ValueError(f"must be a path starting with '/' or an http(s) URL (got {value!r})")
        return value


class LoginAuth(_TokenAuth):
    """A login request whose answer carries a token (e.g. Matrix m.login.password)."""

    kind: Literal["login"]
    request: RequestSpec

    @field_validator("request")
    @classmethod
    def _no_auth(cls, value: RequestSpec) -> RequestSpec:
        if value.auth != "none":
            raise ValueError("the login request must have auth: none")
        return value


AuthSpec = Annotated[
    NoAuth | BearerAuth | OAuth2ClientCredentials | LoginAuth, Field(discriminator="kind")
]


class RetrySpec(_Strict):
    attempts: int = Field(default=4, ge=1, le=20)
    reset_header: str | None = Field(
        default=None,
        description="Header giving when a rate limit resets (epoch, seconds or date), "
        "honoured like Retry-After when that header is absent.",
    )


class Profile(_Strict):
    """A platform's API, described for the audit."""

    schema_version: Literal[1]
    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")]
    title: str
    description: str = ""
    environment: Literal["sandbox", "production"] | None = Field(
        default=None, description="'production': every target using it must say so too."
    )
    idempotent: bool = Field(
        default=False,
        description="The platform de-duplicates submissions by the idempotency key.",
    )
    variables: dict[Ident, VariableSpec] = Field(default_factory=dict)
    secrets: dict[Ident, SecretSpec] = Field(default_factory=dict)
    auth: AuthSpec = NoAuth(kind="none")
    notifier_auth: AuthSpec | None = None
    observer_auth: AuthSpec | None = Field(
        default=None,
        description="How a target's observer authenticates its looks: kind none for logged-out "
        "looks (observer kind anonymous), else a second account's credentials (kind account).",
    )
    rate_limit: Rate | None = None
    timeout: float | None = Field(default=None, gt=0, le=600)
    retry: RetrySpec = RetrySpec()
    setup: list[SetupStep] = Field(default_factory=list)
    preflight: list[CheckStep] = Field(default_factory=list)
    submit: SubmitSpec
    media: dict[MediaModality, MediaSubmitSpec] = Field(
        default_factory=dict,
        description="How image, speech and video probes are posted with their media. A "
        "modality with no entry cannot be audited through this profile: a plan that asks for "
        "it is refused.",
    )
    lookup: LookupSpec | None = None
    status: StatusSpec
    observer_status: StatusSpec | None = Field(
        default=None,
        description="How the observer looks at a post; default: the status request and rules, "
        "made with observer_auth. Used only by targets that name an observer.",
    )
    notice: NoticeSpec | None = None
    order: NoticeSpec | None = Field(default=None, description="Defaults to 'notice'.")
    withdraw: WithdrawSpec
    statements_puid: str | None = Field(
        default=None,
        pattern=r"\{post_id\}",
        description="How the platform's DSA statements of reasons name a post: a template on "
        "{post_id}, e.g. 'post-{post_id}' (read by `platform-audit statements check`).",
    )
    withdraw_removed: bool = Field(
        default=True,
        description="Withdraw a post the platform removed but still serves (e.g. a removal "
        "shown as a tombstone); false where its removal already took it down for good.",
    )
