"""The world of the end-to-end tests (the fault matrix and security): a bucket to materialize into and inspect
(:class:`Env`), and a reverse proxy in front of the simulator's API that plays what the simulator cannot
(:class:`ApiProxy`). Their fixtures (``env``, ``module_instance``, ``module_secrets``) are in ``conftest.py``.
"""

from __future__ import annotations

import asyncio
import json
import threading
from typing import Any

import aiohttp
import dagster as dg
from aiohttp import web

from minimax_dagster.production.manifest import ManifestEntry, VideoManifest
from minimax_dagster.simulator import MiniMaxSimulator
from minimax_dagster.simulator.media import read_mp4_info
from minimax_dagster.storage import VideoKeys, get_json, video_key
from minimax_dagster_tests.dagster_support import TEMPLATE, log_messages, materialize, video_defs


class Env:
    """One bucket of one test world: runs materializations into it and inspects what they left behind."""

    def __init__(
        self,
        sim: MiniMaxSimulator,
        s3_endpoint: str,
        s3_client: Any,
        bucket: str,
        instance: dg.DagsterInstance,
    ) -> None:
        self.sim = sim
        self.s3_endpoint = s3_endpoint
        self.s3 = s3_client
        self.bucket = bucket
        self.instance = instance

    def run(
        self, rows: list[Any], *, overrides: dict[str, Any] | None = None, **asset_kwargs: Any
    ) -> dg.ExecuteInProcessResult:
        """Materialize ``prompts`` → ``videos`` (and the checks) with these rows."""
        defs = video_defs(
            rows,
            sim=self.sim,
            s3_endpoint=self.s3_endpoint,
            bucket=self.bucket,
            minimax_overrides=overrides,
            **asset_kwargs,
        )
        return materialize(defs, self.instance)

    def manifest(self) -> VideoManifest:
        data = get_json(self.s3, self.bucket, "minimax/assets/videos/__all__.json")
        assert data is not None, "no manifest written"
        return VideoManifest.model_validate(data)

    def entries(self) -> dict[str, ManifestEntry]:
        return {e.id: e for e in self.manifest().entries}

    def creates(self, prompt: str) -> int:
        return self.sim.counters()["creates_by_prompt"].get(prompt, 0)

    def failure(self, result: dg.ExecuteInProcessResult) -> str:
        """The videos step's failure message (the run must have failed)."""
        assert not result.success, "the run should have failed"
        data = result.failure_data_for_node("videos")
        assert data is not None and data.error is not None
        return data.error.message

    def logs(self, result: dg.ExecuteInProcessResult) -> list[str]:
        return log_messages(self.instance, result.run_id)

    @staticmethod
    def keys(prompt: str) -> VideoKeys:
        return VideoKeys("minimax", video_key(TEMPLATE, prompt, None))

    def video_objects(self) -> list[str]:
        listed = self.s3.list_objects_v2(Bucket=self.bucket, Prefix="minimax/videos/").get("Contents", [])
        return [o["Key"] for o in listed if o["Key"].endswith(".mp4")]

    def assert_clean(self) -> None:
        """No open multipart upload, nothing outside ``minimax/``, and every video whole: its sidecar agrees on
        the size, and the bytes parse as an MP4."""
        assert self.s3.list_multipart_uploads(Bucket=self.bucket).get("Uploads", []) == []
        listed = self.s3.list_objects_v2(Bucket=self.bucket).get("Contents", [])
        for obj in listed:
            key = obj["Key"]
            assert key.startswith("minimax/"), key
            if not key.endswith(".mp4"):
                continue
            sidecar = get_json(self.s3, self.bucket, key.removesuffix(".mp4") + ".json")
            assert sidecar is not None, f"{key} has no sidecar: a partial store"
            data = self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()
            assert len(data) == sidecar["entry"]["bytes"] == obj["Size"]
            assert read_mp4_info(data)["duration_s"] > 0


class ApiProxy:
    """A reverse proxy over real sockets in front of the simulator's API, for what the simulator plays per prompt
    only: ``refuse`` answers creates naming certain accounts with a fixed error (412 on one account while the
    others still have credits); ``rewrite`` replaces bytes in every line of every answer, stream events included;
    ``fail`` answers every GET whose path ends with a key (``"/videos/"``: an account's list,
    ``"/videos/agent-templates"``) with that status. ``requests`` records every request in order:
    ``(method, path and query, the create's prompt or None)``.
    """

    _HOP = frozenset({"host", "content-length", "transfer-encoding", "connection", "keep-alive"})

    def __init__(
        self,
        upstream: str,
        *,
        refuse: dict[str, tuple[int, str]] | None = None,
        rewrite: tuple[str, str] | None = None,
        fail: dict[str, int] | None = None,
    ) -> None:
        self.upstream = upstream.rstrip("/")
        self.refuse = refuse or {}
        self.fail = dict(fail or {})
        self.requests: list[tuple[str, str, str | None]] = []
        self.rewrite = (rewrite[0].encode(), rewrite[1].encode()) if rewrite else None
        self.refused: dict[str, int] = {}
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="api-proxy", daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1/minimax"

    def __enter__(self) -> ApiProxy:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    async def _start(self) -> None:
        self._session = aiohttp.ClientSession(auto_decompress=False)
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]

    async def _stop(self) -> None:
        await self._runner.cleanup()
        await self._session.close()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        prompt = None
        if request.method == "POST" and request.path.endswith("/videos/agent-create"):
            try:
                fields = json.loads(body or b"{}")
            except ValueError:
                fields = {}
            account, prompt = fields.get("account"), fields.get("prompt")
            if account in self.refuse:
                self.requests.append((request.method, request.path_qs, prompt))
                self.refused[account] = self.refused.get(account, 0) + 1
                status, message = self.refuse[account]
                return web.json_response({"error": message, "code": status}, status=status)
        self.requests.append((request.method, request.path_qs, prompt))
        failing = [status for end, status in self.fail.items() if request.path.endswith(end)]
        if failing and request.method == "GET":
            return web.json_response({"error": "proxy: unavailable", "code": failing[0]}, status=failing[0])
        headers = {k: v for k, v in request.headers.items() if k.lower() not in self._HOP}
        async with self._session.request(
            request.method, self.upstream + request.path_qs, headers=headers, data=body, allow_redirects=False
        ) as upstream:
            out = {k: v for k, v in upstream.headers.items() if k.lower() not in self._HOP}
            response = web.StreamResponse(status=upstream.status, headers=out)
            await response.prepare(request)
            while line := await upstream.content.readline():
                if self.rewrite:
                    line = line.replace(*self.rewrite)
                await response.write(line)
            await response.write_eof()
            return response

    def posts(self, prompt: str) -> list[int]:
        """Positions in :attr:`requests` of the creates of ``prompt``."""
        return [i for i, (method, _, sent) in enumerate(self.requests) if method == "POST" and sent == prompt]

    def lists_between(self, start: int, end: int | None = None) -> list[str]:
        """The GET videos/ requests (path and query) made between positions ``start`` and ``end``."""
        return [
            path for method, path, _ in self.requests[start:end] if method == "GET" and "/videos/?" in path
        ]
