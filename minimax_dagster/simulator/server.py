"""MiniMaxSimulator: runs the aiohttp app on its own event loop in a daemon thread."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from aiohttp import web

from .app import build_app
from .config import SimulatorConfig
from .endpoints.common import CDN_KEY
from .endpoints.control import configure, reset_state
from .state import SimState

log = logging.getLogger(__name__)

__all__ = ["MiniMaxSimulator"]


#: What one client can make the simulator hold, pinned here rather than left to aiohttp's defaults (the same
#: values in aiohttp 3.9-3.14): a request line or header line of at most 8190 bytes and at most 128 headers
#: (answered 400 beyond); bodies of at most ``client_max_size`` (4 MiB, ``app.py``; 413 beyond). An idle
#: keep-alive connection stays open for aiohttp's ``keepalive_timeout`` (3630 s): shorter, a client's pooled
#: connection could be closed under a create. aiohttp has no timeout on a request whose headers trickle in: such a
#: slow-loris client holds one connection and at most ~1 MiB of header buffer, never the event loop; how many
#: connections fit is the process's file-descriptor limit.
HOSTILE_CLIENT_LIMITS: dict[str, Any] = {"max_line_size": 8190, "max_field_size": 8190, "max_headers": 128}


class MiniMaxSimulator:
    """The local useapi.net MiniMax API on a free loopback port. Use as a context manager or call start()/stop().

    Keyword arguments are :class:`SimulatorConfig` fields (they override ``config``).

    >>> import json, urllib.request
    >>> with MiniMaxSimulator(accounts={"100001": 2}, generation_seconds=0.2) as sim:
    ...     request = urllib.request.Request(
    ...         f"{sim.base_url}/scheduler/available", headers={"Authorization": f"Bearer {sim.token}"}
    ...     )
    ...     json.load(urllib.request.urlopen(request, timeout=10))
    {'executing': [], 'available': [{'account': '100001', 'maxJobs': 2, 'executing': 0, 'available': 2}]}
    """

    def __init__(self, config: SimulatorConfig | None = None, **overrides: Any) -> None:
        base = config or SimulatorConfig()
        if overrides:  # validated like the constructor would
            base = SimulatorConfig.model_validate({**base.model_dump(), **overrides})
        self._config = base
        self._state: SimState | None = None
        self._app: web.Application | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._port: int | None = None

    # ---- lifecycle -----------------------------------------------------------------------------------------
    def start(self) -> MiniMaxSimulator:
        if self._thread is not None:
            raise RuntimeError("simulator already started")
        ready = threading.Event()
        failure: list[BaseException] = []
        self._state = SimState(self._config)
        self._executor = ThreadPoolExecutor(max_workers=8, thread_name_prefix="minimax-sim-media")
        self._loop = asyncio.new_event_loop()

        def run() -> None:
            loop = self._loop
            assert loop is not None
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self._serve())
            except BaseException as exc:
                failure.append(exc)
                ready.set()
                return
            ready.set()
            try:
                loop.run_forever()
            finally:
                try:
                    loop.run_until_complete(loop.shutdown_asyncgens())
                finally:
                    loop.close()

        self._thread = threading.Thread(target=run, name="minimax-simulator", daemon=True)
        self._thread.start()
        ready.wait()
        if failure:
            self._thread.join()
            self._thread = None
            raise RuntimeError(f"simulator failed to start: {failure[0]!r}") from failure[0]
        return self

    async def _serve(self) -> None:
        assert self._state is not None and self._executor is not None
        self._app = build_app(self._state, self._executor)
        # handler_cancellation: a handler whose client went away is cancelled (stalled streams end).
        self._runner = web.AppRunner(
            self._app,
            handler_cancellation=True,
            shutdown_timeout=1.0,
            access_log=None,
            **HOSTILE_CLIENT_LIMITS,
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.config.host, self.config.port, reuse_address=True)
        await site.start()
        server = site._server  # the asyncio.Server
        assert isinstance(server, asyncio.Server)
        self._port = server.sockets[0].getsockname()[1]

    def stop(self) -> None:
        if self._thread is None or self._loop is None:
            return
        loop = self._loop
        if loop.is_running():
            if self._state is not None:
                loop.call_soon_threadsafe(setattr, self._state, "stopping", True)

            async def shutdown() -> None:
                if self._runner is not None:
                    await self._runner.cleanup()

            try:
                asyncio.run_coroutine_threadsafe(shutdown(), loop).result(timeout=15)
            except Exception as exc:  # pragma: no cover - best effort
                log.warning("simulator shutdown: %r", exc)
            loop.call_soon_threadsafe(loop.stop)
        self._thread.join(timeout=15)
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
        self._thread = None
        self._loop = None

    def __enter__(self) -> MiniMaxSimulator:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def config(self) -> SimulatorConfig:
        """The configuration in force (including runtime changes made over HTTP)."""
        return self._state.config if self._state is not None else self._config

    # ---- addresses ------------------------------------------------------------------------------------------
    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("simulator not started")
        return self._port

    @property
    def origin(self) -> str:
        host = self.config.host
        if host in ("0.0.0.0", "", "::"):
            host = "127.0.0.1"
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}"

    @property
    def base_url(self) -> str:
        return f"{self.origin}/v1/minimax"

    @property
    def token(self) -> str:
        return self.config.token

    # ---- runtime control -------------------------------------------------------------------------------------
    def _call(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run ``fn(*args)`` on the simulator's loop and return its result."""
        if self._loop is None or not self._loop.is_running():
            raise RuntimeError("simulator not started")

        async def call() -> Any:
            return fn(*args)

        return asyncio.run_coroutine_threadsafe(call(), self._loop).result(timeout=10)

    def counters(self) -> dict[str, Any]:
        """A snapshot of the counters (see the package docstring)."""
        if self._state is None:
            raise RuntimeError("simulator not started")
        return self._state.counters.snapshot()

    def reset(self) -> None:
        """Forget all jobs (running ones cancelled, no callback), fault hit counts and counters; keep files."""
        self._call(reset_state, self._app)

    def set_faults(self, faults: list[str]) -> None:
        """Replace the server-wide faults (ValueError on a bad spec)."""
        assert self._state is not None
        self._call(self._state.set_faults, list(faults))

    def configure(self, **changes: Any) -> None:
        """Change runtime fields (generation_seconds, accounts, faults, video_bytes, ...) while running."""
        self._call(configure, self._app, changes)
        if "video_bytes" in changes and self._app is not None:
            self._call(self._app[CDN_KEY].videos.clear)

    def __repr__(self) -> str:
        where = self.base_url if self._port is not None else "not started"
        return f"MiniMaxSimulator({where})"
