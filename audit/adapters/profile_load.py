"""Loading target profiles (built-in by name, or a YAML file) and checking what they refer to.

Pydantic checks the shape; :func:`check_profile` then checks meaning: every placeholder names a
value that exists where the request is made, every JMESPath expression compiles. Problems are one
:class:`InputError` naming the file, the field, what was expected and what was found.

The JSON Schema for editors is exported with ``python -m audit.adapters.profile_load FILE``.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from audit.adapters.profile_match import check_expression
from audit.adapters.profile_model import (
    BearerAuth,
    CheckStep,
    LoginAuth,
    MediaSubmitSpec,
    NoAuth,
    OAuth2ClientCredentials,
    Profile,
    RequestSpec,
    UploadSpec,
    When,
)
from audit.adapters.profile_template import Template, TemplateError, tree_references
from audit.errors import InputError
from audit.yamlio import load_yaml_file, validation_error

if TYPE_CHECKING:
    from audit.plan import Target

__all__ = [
    "BUILTIN_PROFILES_DIR",
    "builtin_profiles",
    "check_profile",
    "check_target",
    "load_profile",
    "profile_json_schema",
    "profile_record",
    "recorded_profile",
    "resolve_profile",
    "target_variables",
]

BUILTIN_PROFILES_DIR = Path(__file__).resolve().parent.parent / "profiles"
_BUILTIN_NAME = re.compile(r"^[a-z0-9][a-z0-9-]*$")
PROBE_NAMES = frozenset({"probe.text", "probe.language", "probe.modality", "idempotency_key"})
POST_NAMES = frozenset({"post_id", "request_key"})
NOTICE_NAMES = frozenset({"reason", "kind"})
MEDIA_MEMBERS = frozenset({"type", "name", "size", "sha256", "base64"})


def builtin_profiles() -> list[str]:
    return sorted(p.stem for p in BUILTIN_PROFILES_DIR.glob("*.yaml"))


def resolve_profile(ref: str, base: Path | None = None) -> Path:
    """A built-in profile's file by name, or ``ref`` as a path (relative to ``base``)."""
    if _BUILTIN_NAME.match(ref):
        path = BUILTIN_PROFILES_DIR / f"{ref}.yaml"
        if path.is_file():
            return path
        raise InputError(
            f"'profile' must name a built-in profile ({', '.join(builtin_profiles())}) or a "
            f"YAML file (got {ref!r})"
        )
    path = Path(ref)
    return path if path.is_absolute() or base is None else base / path


def load_profile(path: Path) -> Profile:
    data = load_yaml_file(path, what="profile")
    try:
        profile = Profile.model_validate(data)
    except ValidationError as exc:
        raise validation_error(exc, data, path) from None
    check_profile(profile, path)
    return profile


def check_target(target: Target, recorded: Profile | None = None) -> Profile:
    """The target's profile, after checking the target supplies what the profile needs: the
    ``recorded`` one (a run's own, see :func:`recorded_profile`) or else the one its file holds."""
    profile = recorded or load_profile(resolve_profile(target.profile or "", None))
    where = f"target {target.name}, profile {profile.name}"
    captured = _setup_vars(profile)
    for name in target.variables:
        if name not in profile.variables:
            known = ", ".join(sorted(profile.variables)) or "none"
            raise InputError(
                f"'variables.{name}' is not a variable of the profile (declared: {known})",
                where=where,
            )
    for name, spec in profile.variables.items():
        if spec.default is None and name not in target.variables and name not in captured:
            raise InputError(
                f"'variables.{name}' is required but missing ({spec.description})".replace(
                    " ()", ""
                ),
                where=where,
            )
    refs = target.secret_refs()
    _check_observer(target, profile, refs, where)
    for name in refs:
        if name not in profile.secrets:
            known = ", ".join(sorted(profile.secrets)) or "none"
            raise InputError(
                f"'secrets.{name}' is not a secret of the profile (declared: {known})", where=where
            )
    for name, secret in profile.secrets.items():
        if secret.required and name not in refs:
            hint = " (or token_env / token_file)" if name == "token" else ""
            raise InputError(f"'secrets.{name}' is required but missing{hint}", where=where)
    if profile.environment == "production" and target.environment != "production":
        raise InputError(
            "'environment' must be 'production': the profile describes a "
            f"production API (got {target.environment!r})",
            where=where,
        )
    return profile


def _check_observer(target: Target, profile: Profile, refs: dict[str, Any], where: str) -> None:
    """The target's observer fits the profile's: logged out where its observer_auth is none,
    a second account (with every secret its credentials name) where it is not."""
    observer = target.observer
    if observer is None:
        return
    auth = profile.observer_auth
    if auth is None:
        raise InputError(
            "'observer' is given but the profile describes no observer (observer_auth)",
            where=where,
        )
    anonymous = isinstance(auth, NoAuth)
    if anonymous != (observer.kind == "anonymous"):
        raise InputError(
            f"'observer.kind' must be {'anonymous' if anonymous else 'account'}: the profile's "
            f"observer_auth is {auth.kind} (got {observer.kind!r})",
            where=where,
        )
    named = set(re.findall(r"\{secrets\.([A-Za-z_][A-Za-z0-9_]*)\}", auth.model_dump_json()))
    for name in sorted(named - set(refs)):
        raise InputError(
            f"'secrets.{name}' is required by the observer account but missing"
            + (" (or observer.token)" if name == "observer_token" else ""),
            where=where,
        )


def profile_record(profile: Profile) -> dict[str, Any]:
    """A profile as a run records it: its resolved content, not its name or path."""
    return profile.model_dump(mode="json", by_alias=True, exclude_unset=True)


def recorded_profile(record: dict[str, Any] | None) -> Profile | None:
    """The profile a run recorded, or None when it recorded none (sandbox targets, older runs);
    InputError when the record is not a profile."""
    if record is None:
        return None
    try:
        return Profile.model_validate(record)
    except ValidationError as exc:
        raise InputError(
            f"the run's recorded profile is malformed ({exc.errors()[0]['msg']})"
        ) from None


def target_variables(target: Target, profile: Profile) -> dict[str, str]:
    """The profile's defaults overridden by the target's values."""
    values = {n: v.default for n, v in profile.variables.items() if v.default is not None}
    values.update(target.variables)
    return values


def profile_json_schema() -> dict[str, Any]:
    schema = Profile.model_json_schema(by_alias=True)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://platform-audit.invalid/schemas/target-profile.schema.json",
        **schema,
    }


# --- meaning ------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Scope:
    """What placeholders a request may use."""

    names: frozenset[str]
    members: dict[str, frozenset[str]]  # namespace -> known members

    def problem(self, name: str) -> str | None:
        if name in self.names:
            return None
        namespace, _, member = name.partition(".")
        known = self.members.get(namespace)
        if known is None or not member:
            usable = sorted(self.names) + [f"{ns}.NAME" for ns in sorted(self.members)]
            return f"cannot use {{{name}}} here (usable: {', '.join(usable)})"
        if member not in known:
            declared = ", ".join(sorted(known)) or "none"
            return f"refers to {{{name}}}, which is not declared (declared {namespace}: {declared})"
        return None


def _templates(spec: RequestSpec, field: str) -> Iterator[tuple[str, Any]]:
    """(field, template text or JSON tree) for every templated part of a request."""
    yield f"{field}.path", spec.path
    for key, value in spec.query.items():
        yield f"{field}.query.{key}", value
    for key, value in spec.headers.items():
        yield f"{field}.headers.{key}", value
    if spec.body is not None:
        yield f"{field}.json", spec.body
    for key, value in (spec.form or {}).items():
        yield f"{field}.form.{key}", value
    for key, part in (spec.multipart or {}).items():
        if isinstance(part, str):
            yield f"{field}.multipart.{key}", part
        else:
            yield f"{field}.multipart.{key}.filename", part.filename
            yield f"{field}.multipart.{key}.type", part.type


def _fail(source: Path, field: str, message: str) -> InputError:
    return InputError(f"'{field}' {message}", source=source)


def _check_names(field: str, names: list[str], scope: _Scope, source: Path) -> None:
    for name in names:
        problem = scope.problem(name)
        if problem:
            raise _fail(source, field, problem)


def _check_request(
    spec: RequestSpec, field: str, scope: _Scope, profile: Profile, source: Path
) -> None:
    for where, template in _templates(spec, field):
        try:
            names = tree_references(template)
        except TemplateError as exc:
            raise _fail(source, where, str(exc)) from None
        _check_names(where, names, scope, source)
    if spec.carries_media and "media" not in scope.members:
        raise _fail(source, field, "sends media, which only a media post or upload can")
    if spec.auth == "notifier" and profile.notifier_auth is None:
        raise _fail(source, f"{field}.auth", "is 'notifier' but the profile has no notifier_auth")
    if spec.auth == "observer" and profile.observer_auth is None:
        raise _fail(source, f"{field}.auth", "is 'observer' but the profile has no observer_auth")


def _check_expression(field: str, expression: str | None, source: Path) -> None:
    if expression is None:
        return
    problem = check_expression(expression)
    if problem:
        raise _fail(source, field, f"must be a JMESPath expression ({problem}; got {expression!r})")


def _check_when(field: str, when: When, source: Path) -> None:
    for expression in when.fields:
        _check_expression(f"{field}.fields", expression, source)


def _check_auth(auth: Any, field: str, scope: _Scope, profile: Profile, source: Path) -> None:
    if isinstance(auth, NoAuth) or auth is None:
        return
    if isinstance(auth, BearerAuth):
        _check_template(f"{field}.token", auth.token, scope, source)
        return
    if isinstance(auth, OAuth2ClientCredentials):
        for name in ("client_id", "client_secret", "scope", "token_url"):
            value = getattr(auth, name)
            if value is not None:
                _check_template(f"{field}.{name}", value, scope, source)
    elif isinstance(auth, LoginAuth):
        _check_request(auth.request, f"{field}.request", scope, profile, source)
    _check_expression(f"{field}.token", auth.token, source)
    _check_expression(f"{field}.expires_in", auth.expires_in, source)


def _check_template(field: str, text: str, scope: _Scope, source: Path) -> None:
    try:
        names = list(Template.parse(text).references)
    except TemplateError as exc:
        raise _fail(source, field, str(exc)) from None
    _check_names(field, names, scope, source)


def _setup_vars(profile: Profile) -> set[str]:
    return {name for step in profile.setup for name in step.capture}


def check_profile(profile: Profile, source: Path) -> None:
    """Raise InputError at the first placeholder or expression that cannot work."""
    secrets = frozenset(profile.secrets)
    declared = frozenset(profile.variables)
    every_var = declared | _setup_vars(profile)
    base = _Scope(frozenset(), {"vars": declared, "secrets": secrets})
    _check_auth(profile.auth, "auth", base, profile, source)
    _check_auth(profile.notifier_auth, "notifier_auth", base, profile, source)
    _check_auth(profile.observer_auth, "observer_auth", base, profile, source)
    if profile.observer_status is not None and profile.observer_auth is None:
        raise _fail(source, "observer_status", "is given but the profile has no observer_auth")
    steps: list[tuple[str, Sequence[CheckStep]]] = [
        ("setup", profile.setup),
        ("preflight", profile.preflight),
    ]
    for section, listed in steps:
        for index, step in enumerate(listed):
            if step.request.auth == "observer" and not step.only_with_observer:
                raise _fail(
                    source,
                    f"{section}.{index}.only_with_observer",
                    "must be true for a step made as the observer (auth: observer)",
                )
    _check_setup(profile, source, declared, secrets)
    _check_submit(profile, source, every_var, secrets)
    _check_media(profile, source, every_var, secrets)
    post = frozenset(profile.submit.post)
    on_post = _Scope(POST_NAMES, {"vars": every_var, "secrets": secrets, "post": post})
    noticing = _Scope(
        POST_NAMES | NOTICE_NAMES | PROBE_NAMES,
        {"vars": every_var, "secrets": secrets, "post": post},
    )
    sections: list[tuple[str, Any, _Scope]] = [
        ("status", profile.status, on_post),
        ("observer_status", profile.observer_status, on_post),
        ("withdraw", profile.withdraw, on_post),
        ("notice", profile.notice, noticing),
        ("order", profile.order, noticing),
    ]
    for name, section, scope in sections:
        if section is None:
            continue
        _check_request(section.request, f"{name}.request", scope, profile, source)
        _check_rules(name, section.outcomes, source)


def _check_rules(name: str, rules: Any, source: Path) -> None:
    for index, rule in enumerate(rules):
        field = f"{name}.outcomes.{index}"
        _check_when(f"{field}.when", rule.when, source)
        _check_expression(f"{field}.detail", rule.detail, source)
        _check_expression(f"{field}.reference", getattr(rule, "reference", None), source)


def _check_setup(
    profile: Profile, source: Path, declared: frozenset[str], secrets: frozenset[str]
) -> None:
    known = set(declared)
    for index, step in enumerate(profile.setup):
        field = f"setup.{index}"
        scope = _Scope(frozenset(), {"vars": frozenset(known), "secrets": secrets})
        _check_request(step.request, f"{field}.request", scope, profile, source)
        _check_when(f"{field}.expect", step.expect, source)
        for name, expression in step.capture.items():
            _check_expression(f"{field}.capture.{name}", expression, source)
        known.update(step.capture)
    scope = _Scope(frozenset(), {"vars": frozenset(known), "secrets": secrets})
    for index, check in enumerate(profile.preflight):
        field = f"preflight.{index}"
        _check_request(check.request, f"{field}.request", scope, profile, source)
        _check_when(f"{field}.expect", check.expect, source)


def _check_submit(
    profile: Profile, source: Path, every_var: frozenset[str], secrets: frozenset[str]
) -> None:
    submit = profile.submit
    scope = _Scope(PROBE_NAMES, {"vars": every_var, "secrets": secrets})
    _check_request(submit.request, "submit.request", scope, profile, source)
    _check_rules("submit", submit.outcomes, source)
    for name, expression in submit.capture.items():
        _check_expression(f"submit.capture.{name}", expression, source)
    post_scope = _Scope(frozenset(), {"vars": every_var, "captured": frozenset(submit.capture)})
    for name, text in submit.post.items():
        _check_template(f"submit.post.{name}", text, post_scope, source)
    if profile.lookup is not None:
        _check_request(profile.lookup.request, "lookup.request", scope, profile, source)
        _check_rules("lookup", profile.lookup.outcomes, source)


def _check_media(
    profile: Profile, source: Path, every_var: frozenset[str], secrets: frozenset[str]
) -> None:
    """Each media post: its upload, its processing wait and its post refer only to what they
    have, the media is sent by one of them, and the post is identified as text posts are."""
    for modality, spec in profile.media.items():
        field = f"media.{modality}"
        members = {"vars": every_var, "secrets": secrets, "media": MEDIA_MEMBERS}
        if spec.upload is not None:
            _check_upload(spec.upload, field, members, profile, source)
            members = {**members, "uploaded": frozenset(spec.upload.capture)}
        _check_media_post(spec, field, members, profile, source)
        if not (spec.request.carries_media or (spec.upload and spec.upload.request.carries_media)):
            raise _fail(
                source,
                field,
                "never sends the media: its upload or its post must carry it (content: media, a "
                "multipart file part, or {media.base64} in the JSON)",
            )


def _check_upload(
    upload: UploadSpec,
    field: str,
    members: dict[str, frozenset[str]],
    profile: Profile,
    source: Path,
) -> None:
    scope = _Scope(PROBE_NAMES, members)
    _check_request(upload.request, f"{field}.upload.request", scope, profile, source)
    _check_when(f"{field}.upload.expect", upload.expect, source)
    for name, expression in upload.capture.items():
        _check_expression(f"{field}.upload.capture.{name}", expression, source)
    if upload.ready is not None:
        ready, where = upload.ready, f"{field}.upload.ready"
        after = _Scope(PROBE_NAMES, {**members, "uploaded": frozenset(upload.capture)})
        _check_request(ready.request, f"{where}.request", after, profile, source)
        _check_when(f"{where}.until", ready.until, source)
        _check_when(f"{where}.pending", ready.pending, source)


def _check_media_post(
    spec: MediaSubmitSpec,
    field: str,
    members: dict[str, frozenset[str]],
    profile: Profile,
    source: Path,
) -> None:
    _check_request(spec.request, f"{field}.request", _Scope(PROBE_NAMES, members), profile, source)
    if spec.request.rate_limit is not None:
        raise _fail(
            source,
            f"{field}.request.rate_limit",
            "cannot be set: every post, text or media, is paced by submit.request.rate_limit",
        )
    _check_rules(field, spec.outcomes, source)
    for name, expression in spec.capture.items():
        _check_expression(f"{field}.capture.{name}", expression, source)
    post_scope = _Scope(frozenset(), {"vars": members["vars"], "captured": frozenset(spec.capture)})
    for name, text in spec.post.items():
        _check_template(f"{field}.post.{name}", text, post_scope, source)
    if sorted(spec.post) != sorted(profile.submit.post):
        expected = ", ".join(sorted(profile.submit.post))
        raise _fail(
            source,
            f"{field}.post",
            f"must name the same fields as submit.post ({expected}), so later looks find "
            f"the post (got {', '.join(sorted(spec.post))})",
        )


def main(argv: list[str] | None = None) -> int:
    """Write the JSON Schema of profiles to the file given (or stdout)."""
    args = sys.argv[1:] if argv is None else argv
    text = json.dumps(profile_json_schema(), indent=2, ensure_ascii=False) + "\n"
    if args:
        Path(args[0]).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
