"""Authentication for profile requests: none, a bearer token, OAuth2 client credentials, a login.

Tokens obtained from the platform are registered with the scrubber before they are used, so no
record ever holds them. A token with a lifetime is fetched again shortly before it expires (on
the injected clock); any token is fetched again once after a 401.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Mapping
from typing import Protocol
from urllib.parse import quote_plus

from audit.adapters.profile_match import extract_text, search
from audit.adapters.profile_model import (
    BearerAuth,
    LoginAuth,
    NoAuth,
    OAuth2ClientCredentials,
)
from audit.adapters.profile_request import AUTH_ACTION, SecretScrubber, render_request
from audit.adapters.profile_template import Template, TemplateError
from audit.clock import Clock
from audit.http import Exchange, PlatformClient

__all__ = ["AuthFailure", "Authenticator", "build_authenticator"]


class AuthFailure(Exception):
    """No token could be obtained; the message says why (already scrubbed of secrets)."""


class Authenticator(Protocol):
    refreshable: bool

    async def headers(self) -> dict[str, str]:
        """Headers that authenticate one request."""

    def invalidate(self, used: Mapping[str, str]) -> None:
        """The platform refused the credentials in ``used`` (HTTP 401)."""


class NoAuthenticator:
    refreshable = False

    async def headers(self) -> dict[str, str]:
        return {}

    def invalidate(self, used: Mapping[str, str]) -> None:
        del used  # nothing to refresh


class StaticAuthenticator:
    refreshable = False

    def __init__(self, header: str, value: str) -> None:
        self._headers = {header: value}

    async def headers(self) -> dict[str, str]:
        return dict(self._headers)

    def invalidate(self, used: Mapping[str, str]) -> None:
        del used  # nothing to refresh


def _header_value(scheme: str, token: str) -> str:
    return f"{scheme} {token}" if scheme else token


class TokenAuthenticator:
    """A token fetched from the platform (OAuth2 client credentials or a login request)."""

    refreshable = True

    def __init__(
        self,
        spec: OAuth2ClientCredentials | LoginAuth,
        client: PlatformClient,
        values: Mapping[str, str],
        clock: Clock,
        scrubber: SecretScrubber,
    ) -> None:
        self._spec = spec
        self._client = client
        self._values = values
        self._clock = clock
        self._scrubber = scrubber
        self._token: str | None = None
        self._expires_at: float | None = None
        self._lock = asyncio.Lock()
        self.fetches = 0

    def _stale(self) -> bool:
        if self._token is None:
            return True
        if self._expires_at is None:
            return False
        return self._clock.now() >= self._expires_at - self._spec.refresh_margin

    async def headers(self) -> dict[str, str]:
        async with self._lock:
            if self._stale():
                await self._fetch()
            assert self._token is not None
            return {self._spec.header: _header_value(self._spec.scheme, self._token)}

    def invalidate(self, used: Mapping[str, str]) -> None:
        current = None if self._token is None else _header_value(self._spec.scheme, self._token)
        if used.get(self._spec.header) == current:
            self._token, self._expires_at = None, None

    async def _fetch(self) -> None:
        self.fetches += 1
        try:
            exchange = await self._send()
        except TemplateError as exc:
            raise AuthFailure(f"authentication request cannot be made: {exc}") from None
        body = exchange.json()
        token = extract_text(self._spec.token, body) if exchange.ok else None
        if exchange.status is None or not 200 <= exchange.status < 300 or token is None:
            raise AuthFailure(
                "authentication failed: " + self._scrubber.text(_describe_auth(exchange))
            )
        self._scrubber.add(token)
        self._token = token
        self._expires_at = self._expiry(body)

    def _expiry(self, body: object) -> float | None:
        if self._spec.expires_in is None:
            return None
        lifetime = search(self._spec.expires_in, body)
        if isinstance(lifetime, bool) or not isinstance(lifetime, int | float) or lifetime <= 0:
            return None
        seconds = lifetime / 1000.0 if self._spec.expires_in_unit == "ms" else float(lifetime)
        return self._clock.now() + seconds

    async def _send(self) -> Exchange:
        spec = self._spec
        if isinstance(spec, LoginAuth):
            rendered = render_request(spec.request, self._values)
            return await self._client.request(
                rendered.method,
                rendered.path,
                action=AUTH_ACTION,
                json_body=rendered.json_body,
                data=rendered.form,
                headers=rendered.headers,
                timeout=rendered.timeout,
            )
        return await self._client_credentials(spec)

    async def _client_credentials(self, spec: OAuth2ClientCredentials) -> Exchange:
        client_id = Template.parse(spec.client_id).render(self._values)
        secret = Template.parse(spec.client_secret).render(self._values)
        form = {"grant_type": "client_credentials"}
        if spec.scope:
            form["scope"] = Template.parse(spec.scope).render(self._values)
        headers = {"Accept": "application/json"}
        if spec.client_auth == "basic":  # RFC 6749 section 2.3.1: form-encode, then base64
            pair = f"{quote_plus(client_id)}:{quote_plus(secret)}".encode()
            encoded = base64.b64encode(pair).decode("ascii")
            self._scrubber.add(encoded)
            headers["Authorization"] = f"Basic {encoded}"
        else:
            form.update(client_id=client_id, client_secret=secret)
        url = Template.parse(spec.token_url).render_path(self._values)
        return await self._client.request(
            "POST", url, action=AUTH_ACTION, data=form, headers=headers
        )


def _describe_auth(exchange: Exchange) -> str:
    if exchange.status is None:
        return f"no answer: {exchange.error}"
    if 200 <= exchange.status < 300:
        return f"HTTP {exchange.status} without a usable token"
    return exchange.describe()


def build_authenticator(
    spec: NoAuth | BearerAuth | OAuth2ClientCredentials | LoginAuth,
    client: PlatformClient,
    values: Mapping[str, str],
    clock: Clock,
    scrubber: SecretScrubber,
) -> NoAuthenticator | StaticAuthenticator | TokenAuthenticator:
    if isinstance(spec, NoAuth):
        return NoAuthenticator()
    if isinstance(spec, BearerAuth):
        try:
            token = Template.parse(spec.token).render(values)
        except TemplateError:  # an optional secret was not given: send no credentials
            return NoAuthenticator()
        scrubber.add(token)
        return StaticAuthenticator(spec.header, _header_value(spec.scheme, token))
    return TokenAuthenticator(spec, client, values, clock, scrubber)
