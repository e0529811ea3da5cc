"""``ApiTransport``: the HTTP plumbing under the client: one pooled session, the token header, errors mapped.

A request that could not be sent raises :class:`ConnectionFailedError`; one that was sent (or may have been) and
lost its answer raises :class:`AnswerLostError`, which matters for a create (see
:mod:`minimax_dagster.api.reconcile`). An HTTP error answer raises the matching :class:`MiniMaxError`.

>>> transport = ApiTransport("secret-token", base_url="http://127.0.0.1:9/v1/minimax/")
>>> (transport.base_url, "secret-token" in repr(transport))
('http://127.0.0.1:9/v1/minimax', False)
>>> transport.close()
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from typing_extensions import Self
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError

from minimax_dagster.api.create_stream import short_error
from minimax_dagster.api.errors import (
    AnswerLostError,
    ConnectionFailedError,
    MiniMaxError,
    error_from_response,
)
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
    ) -> None:
        if not api_token:
            raise ValueError("api_token is empty: set USEAPI_TOKEN (your useapi.net API token)")
        self.base_url = base_url.rstrip("/")
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.retry = retry or BoundedRetry(total=0, raise_on_status=False)
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
        kwargs.setdefault("timeout", (self.connect_timeout, self.read_timeout))
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
            raise self._error(response)
        return response

    def _error(self, response: requests.Response) -> MiniMaxError:
        try:
            body: Any = response.json()
        except ValueError:
            body = response.text
        retry_after = _retry_after(response)
        response.close()
        return error_from_response(response.status_code, body, retry_after=retry_after)

    def _get_json(self, path: str, params: dict[str, Any] | None = None) -> Any:
        response = self._request(
            "GET", path, params={k: v for k, v in (params or {}).items() if v is not None}
        )
        try:
            return response.json()
        except ValueError:
            raise MiniMaxError(
                f"GET {path}: the API answered with non-JSON", status=response.status_code
            ) from None


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
