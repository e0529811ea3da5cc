"""``ApiTransport``: the HTTP plumbing under the client: one pooled session, the token header, errors mapped.

A request that could not be sent raises :class:`ConnectionFailedError`; one that was sent (or may have been) and
lost its answer raises :class:`AnswerLostError`, which matters for a create (see
:mod:`minimax_dagster.api.reconcile`). An HTTP error answer raises the matching :class:`MiniMaxError`.

Every answer is streamed and its body read against a cap of :class:`~minimax_dagster.api.limits.ReadLimits`
(never ``response.json()`` on a whole body): an error body is cut at ``max_error_body_bytes`` and the error keeps
a short excerpt; a JSON answer over ``max_json_bytes`` raises :class:`AnswerTooLargeError`. Redirects are not
followed (requests would read a redirect's whole body; the API does not redirect): a 3xx raises an error.

>>> transport = ApiTransport("secret-token", base_url="http://127.0.0.1:9/v1/minimax/")
>>> (transport.base_url, "secret-token" in repr(transport))
('http://127.0.0.1:9/v1/minimax', False)
>>> transport.close()
"""

from __future__ import annotations

import contextlib
import json
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from typing_extensions import Self
from urllib3.exceptions import ConnectTimeoutError, DecodeError, HTTPError, NewConnectionError

from minimax_dagster.api.create_stream import short_error
from minimax_dagster.api.errors import (
    AnswerLostError,
    AnswerTooLargeError,
    ConnectionFailedError,
    MiniMaxError,
    error_from_response,
)
from minimax_dagster.api.limits import ReadLimits
from minimax_dagster.api.retry import BoundedRetry

if TYPE_CHECKING:
    from requests.sessions import _Settings


class EnvironmentOnceSession(requests.Session):
    """A ``requests.Session`` that reads the environment's proxy and CA-bundle settings once per origin.

    A plain session (``trust_env``) walks the whole process environment on every request to find
    ``*_proxy`` variables (``get_environ_proxies``), about a fifth of the CPU of a small request in a
    process with a large environment, as a Dagster run worker has. This one does it on the first request to
    each ``scheme://host:port`` and keeps the answer (``HTTPS_PROXY``, ``NO_PROXY``, ``REQUESTS_CA_BUNDLE``
    ... are honoured as a plain session honours them, but a change to them is seen by new sessions only).
    Requests that pass their own ``proxies``, ``verify`` or ``cert`` are resolved as usual.

    >>> session = EnvironmentOnceSession()
    >>> first = session.merge_environment_settings("http://127.0.0.1:9/a", {}, None, None, None)
    >>> again = session.merge_environment_settings("http://127.0.0.1:9/b", {}, None, None, None)
    >>> first == again, len(session._environment)
    (True, 1)
    """

    def __init__(self) -> None:
        super().__init__()
        self._environment: dict[tuple[str, str, Any], _Settings] = {}

    def merge_environment_settings(
        self, url: Any, proxies: Any, stream: Any, verify: Any, cert: Any
    ) -> _Settings:
        if proxies or verify is not None or cert is not None:
            return super().merge_environment_settings(url, proxies, stream, verify, cert)
        parts = urlsplit(url)
        key = (parts.scheme, parts.netloc, stream)
        found = self._environment.get(key)
        if found is None:
            found = super().merge_environment_settings(url, proxies, stream, verify, cert)
            self._environment[key] = found
        settings = found.copy()
        settings["proxies"] = dict(found["proxies"])  # the adapter may change it: never the kept one
        return settings


class ApiTransport:
    """A pooled session to the API root with the bearer token, a retry policy and error mapping.

    >>> with ApiTransport("t", base_url="http://127.0.0.1:9/v1/minimax") as transport:
    ...     transport.session.headers["Accept"]
    'application/json'
    """

    def __init__(
        self,
        api_token: str,
        base_url: str,
        *,
        connect_timeout: float = 10.0,
        read_timeout: float = 45.0,
        retry: BoundedRetry | None = None,
        session: requests.Session | None = None,
        user_agent: str = "minimax-dagster",
        limits: ReadLimits | None = None,
    ) -> None:
        if not api_token:
            raise ValueError("api_token is empty: set USEAPI_TOKEN (your useapi.net API token)")
        self.base_url = base_url.rstrip("/")
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.retry = retry or BoundedRetry(total=0, raise_on_status=False)
        self.limits = limits or ReadLimits()
        self.session = session or EnvironmentOnceSession()
        adapter = HTTPAdapter(max_retries=self.retry, pool_connections=4, pool_maxsize=32)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self.session.headers.update({"User-Agent": user_agent, "Accept": "application/json"})
        # The token travels only in this header; requests never puts headers into exception text.
        self.session.headers["Authorization"] = f"Bearer {api_token}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={self.base_url!r})"

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the pooled connections."""
        self.session.close()

    def _url(self, path: str) -> str:
        return f"{self.base_url}/{path.lstrip('/')}"

    def _request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """Send one request (streamed: the caller reads the body with :meth:`_read_json` or ``response.raw``)."""
        kwargs.setdefault("timeout", (self.connect_timeout, self.read_timeout))
        kwargs["stream"] = True
        kwargs["allow_redirects"] = False
        try:
            response = self.session.request(method, self._url(path), **kwargs)
        except requests.exceptions.ConnectionError as exc:
            if _request_may_have_been_sent(exc):
                raise AnswerLostError(f"{method} {path}: the answer was lost ({short_error(exc)})") from None
            raise ConnectionFailedError(
                f"{method} {path}: cannot reach the API ({short_error(exc)})"
            ) from None
        except requests.exceptions.Timeout as exc:
            raise AnswerLostError(f"{method} {path}: no answer in time ({short_error(exc)})") from None
        if response.status_code >= 400:
            raise self._error(method, path, response)
        if 300 <= response.status_code < 400:
            response.close()
            raise MiniMaxError(
                f"{method} {path}: the API answered with a redirect, which is not followed; set base_url to "
                f"the API's own address",
                status=response.status_code,
            )
        return response

    def _error(self, method: str, path: str, response: requests.Response) -> MiniMaxError:
        cap = self.limits.max_error_body_bytes
        retry_after = _retry_after(response)
        unread = ""
        try:
            data, cut = self._read_body(method, path, response, cap, "max_error_body_bytes")
        except MiniMaxError as exc:
            data, cut, unread = bytearray(), False, f" (its body could not be read: {exc.message})"
        text = data.decode("utf-8", errors="replace")
        body: Any = text
        if not cut:
            with contextlib.suppress(ValueError):
                body = json.loads(text)
        error = error_from_response(response.status_code, body, retry_after=retry_after)
        if cut or len(data) > _ERROR_BODY_KEPT:
            # Errors travel in logs, pickles and metadata: keep only the start of a long body.
            error.body = text[:_ERROR_BODY_KEPT]
            error.message = error.message[:_ERROR_BODY_KEPT]
        if cut:
            error.message += (
                f" (the error body is longer than ReadLimits.max_error_body_bytes = {cap} bytes: it was not "
                f"read further and only its start is kept)"
            )
        error.message += unread
        error.args = (error.message,)
        return error

    def _read_json(self, method: str, path: str, response: requests.Response) -> Any:
        """The JSON of an answer's body, read up to ``max_json_bytes``."""
        cap = self.limits.max_json_bytes
        data, cut = self._read_body(method, path, response, cap, "max_json_bytes")
        if cut:
            raise AnswerTooLargeError(
                f"{method} {path}: the answer is over ReadLimits.max_json_bytes = {cap} bytes; it was not read "
                f"further (raise the limit if the account really holds that much)",
                status=response.status_code,
            )
        try:
            return json.loads(data)
        except ValueError:
            raise MiniMaxError(
                f"{method} {path}: the API answered with non-JSON", status=response.status_code
            ) from None

    def _read_body(
        self, method: str, path: str, response: requests.Response, cap: int, setting: str
    ) -> tuple[bytearray, bool]:
        """Up to ``cap`` decoded bytes of the body, and whether there was more (or it came too slowly).

        The response is closed afterwards. Each ``read1`` decodes at most what it returns (urllib3 >= 2.6), so
        a compressed body is bounded by the same cap as a plain one.
        """
        raw = response.raw
        deadline = time.monotonic() + self.limits.body_seconds
        data = bytearray()  # one buffer, no join or slice copies: the peak stays near the cap
        try:
            while len(data) <= cap:
                if time.monotonic() > deadline:
                    raise AnswerTooLargeError(
                        f"{method} {path}: the answer's body was not complete after ReadLimits.body_seconds = "
                        f"{self.limits.body_seconds} s ({len(data)} bytes so far; {setting} is {cap})",
                        status=response.status_code,
                    )
                piece = raw.read1(min(_BODY_CHUNK, cap + 1 - len(data)), decode_content=True)
                if not piece:
                    break
                data += piece
        except (HTTPError, DecodeError, OSError, requests.exceptions.RequestException) as exc:
            raise AnswerLostError(
                f"{method} {path}: the answer's body was lost ({short_error(exc)})",
                status=response.status_code,
            ) from None
        finally:
            response.close()
        cut = len(data) > cap
        if cut:
            del data[cap:]
        return data, cut

    def _get_json(self, path: str, params: dict[str, Any] | None = None) -> Any:
        response = self._request(
            "GET", path, params={k: v for k, v in (params or {}).items() if v is not None}
        )
        return self._read_json("GET", path, response)


_BODY_CHUNK = 65536
#: The most of an error body kept on the error (as its ``body``) when the body is long or was cut.
_ERROR_BODY_KEPT = 2048


def _request_may_have_been_sent(exc: requests.exceptions.ConnectionError) -> bool:
    # A connection that could not be opened sent nothing; anything else (a reset, a close, a read error)
    # may have come after the request reached the API. When unsure, assume it did.
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return False
    reason = exc.args[0] if exc.args else None
    reason = getattr(reason, "reason", reason)
    return not isinstance(reason, (NewConnectionError, ConnectTimeoutError))


def _retry_after(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None
