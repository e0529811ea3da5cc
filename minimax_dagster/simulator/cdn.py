"""The simulated CDN (no auth, like a real CDN) under ``<origin>/cdn/``.

Paths::

    /cdn/video/<videoNumericId>.mp4        the watermarked video (videoURL, fileUrl, watermark_url)
    /cdn/video/<videoNumericId>_nowm.mp4   the video without watermark (downloadURL, no_watermark_url)
    /cdn/video/<videoNumericId>.png        the poster (coverURL, posterUrl, the "image" attachment)
    /cdn/files/<account>/<fileNumericId>.<png|jpg>   uploaded images (ossPath)
    /cdn/templates/<templateId>.mp4|.png   template previews (agent-templates videoURL / coverURL)

Videos are rendered by :mod:`.media` lazily on first request, off the event loop, and cached per video
(LRU). They are streamed in 1 MiB chunks taken from ``RenderedVideo.iter_bytes()`` (also off the event loop),
with ``Content-Length``, ``Accept-Ranges: bytes``, an ``ETag`` and ``Range: bytes=N-`` / ``bytes=N-M`` /
``bytes=-N`` support (206, or 416 when unsatisfiable), so multi-GiB files use bounded memory and
interrupted downloads can resume.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor
from typing import Any, cast

from aiohttp import web

from .catalogue import get_template
from .media import RenderedVideo, VideoSpec, render_poster_png, render_video
from .state import SimState

log = logging.getLogger(__name__)

__all__ = ["CHUNK_SIZE", "Cdn"]

CHUNK_SIZE = 1 << 20

_VIDEO_PATH = re.compile(r"^video/(\d+)(_nowm)?\.(mp4|png)$")
_FILE_PATH = re.compile(r"^files/([^/]+)/(\d+)\.(png|jpg)$")
_TEMPLATE_PATH = re.compile(r"^templates/(\d+)\.(mp4|png)$")
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


class _LruCache:
    """Async memo with single-flight: concurrent requests for one key render once."""

    def __init__(self, max_entries: int) -> None:
        self.max_entries = max_entries
        self._done: OrderedDict[Any, Any] = OrderedDict()
        self._pending: dict[Any, asyncio.Future] = {}

    async def get(self, key: Any, factory: Callable[[], Awaitable[Any]]) -> Any:
        if key in self._done:
            self._done.move_to_end(key)
            return self._done[key]
        if key in self._pending:
            return await asyncio.shield(self._pending[key])
        fut = asyncio.get_running_loop().create_future()
        self._pending[key] = fut
        try:
            value = await factory()
        except BaseException as exc:
            fut.set_exception(exc)
            fut.exception()  # mark retrieved
            raise
        finally:
            self._pending.pop(key, None)
        fut.set_result(value)
        self._done[key] = value
        while len(self._done) > self.max_entries:
            self._done.popitem(last=False)
        return value

    def clear(self) -> None:
        self._done.clear()


def _not_found() -> web.Response:
    # A CDN answers plain text, not the API's JSON errors.
    return web.Response(status=404, text="Not Found")


class Cdn:
    def __init__(self, state: SimState, executor: Executor) -> None:
        self.state = state
        self.executor = executor
        self.videos = _LruCache(16)
        self.images = _LruCache(256)

    async def _run(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self.executor, fn, *args)

    async def _video(self, key: Any, spec: VideoSpec) -> RenderedVideo:
        return await self.videos.get(key, lambda: self._run(render_video, spec))

    async def _poster(self, width: int, height: int, title: str) -> bytes:
        # Keyed by what the PNG is made of: every job of a template (and the template itself) shares one.
        key = ("poster", width, height, title)
        return await self.images.get(key, lambda: self._run(render_poster_png, width, height, title))

    async def handle(self, request: web.Request) -> web.StreamResponse:
        path = request.match_info["path"]
        if m := _VIDEO_PATH.match(path):
            return await self._job_media(request, m.group(1), bool(m.group(2)), m.group(3))
        if m := _FILE_PATH.match(path):
            file = self.state.files_by_numeric.get(m.group(2))
            if file is None or file.account != m.group(1) or file.extension != m.group(3):
                return _not_found()
            return web.Response(body=file.data, content_type=file.content_type)
        if m := _TEMPLATE_PATH.match(path):
            t = get_template(m.group(1))
            if t is None:
                return _not_found()
            if m.group(2) == "png":
                png = await self._poster(t.width, t.height, t.name)
                return web.Response(body=png, content_type="image/png")
            spec = VideoSpec(t.width, t.height, t.duration, t.fps, t.name)
            rendered = await self._video(("tpl", t.template_id), spec)
            return await self.send_video(request, rendered, etag=f"tpl-{t.template_id}-{rendered.size}")
        return _not_found()

    async def _job_media(
        self, request: web.Request, numeric_id: str, nowm: bool, ext: str
    ) -> web.StreamResponse:
        job = self.state.jobs_by_numeric.get(numeric_id)
        if job is None or job.removed or job.status != 2:
            # Not (yet) produced, failed, moderated or forgotten: nothing on the CDN.
            return _not_found()
        t = job.template
        if ext == "png":
            if nowm:
                return _not_found()
            png = await self._poster(t.width, t.height, t.name)
            return web.Response(body=png, content_type="image/png")
        # The card shows the template name and the prompt; the watermarked copy says so.
        title = f"{t.name}: {job.prompt}" if job.prompt else t.name
        if not nowm:
            title += " | MiniMax watermark"
        total = self.state.config.video_bytes
        spec = VideoSpec(t.width, t.height, t.duration, t.fps, title, total)
        rendered = await self._video(("job", numeric_id, nowm, total), spec)

        cut_fault = job.faults.get("cdn_cut")

        def claim_cut(length: int) -> int | None:
            """cdn_cut=BYTES[:N]: cut this response if it is longer than BYTES and fewer than N were cut."""
            if cut_fault is None:
                return None
            cut_bytes, cut_count = cast("tuple[int, int | None]", cut_fault)
            if cut_bytes >= length or (cut_count and job.cdn_cuts_done >= cut_count):
                return None
            job.cdn_cuts_done += 1
            return cut_bytes

        bps = job.faults.get("cdn_slow") or self.state.config.cdn_bytes_per_second
        counters = self.state.counters
        if request.method != "HEAD":
            counters.bump("downloads")
            counters.bump("downloads_by_video", job.video_id)
        return await self.send_video(
            request,
            rendered,
            etag=f"{numeric_id}{'-nowm' if nowm else ''}-{rendered.size}",
            cut=claim_cut,
            bytes_per_second=bps,  # type: ignore[arg-type]
            on_complete=lambda: counters.bump("downloads_completed"),
        )

    async def send_video(
        self,
        request: web.Request,
        rendered: RenderedVideo,
        *,
        etag: str,
        cut: Callable[[int], int | None] | None = None,
        bytes_per_second: float | None = None,
        on_complete: Callable[[], None] | None = None,
    ) -> web.StreamResponse:
        size = rendered.size
        start, end = 0, size - 1  # inclusive
        status = 200
        headers = {"Accept-Ranges": "bytes", "ETag": f'"{etag}"', "Cache-Control": "public, max-age=86400"}
        range_header = request.headers.get("Range")
        if_range = request.headers.get("If-Range")
        if range_header and (if_range is None or if_range.strip() == f'"{etag}"'):
            m = _RANGE.match(range_header.strip())
            if m and (m.group(1) or m.group(2)):
                first, last = m.group(1), m.group(2)
                if first:
                    start = int(first)
                    end = min(int(last), size - 1) if last else size - 1
                else:  # suffix range: the last N bytes
                    start = max(0, size - int(last))
                if start >= size or start > end:
                    headers["Content-Range"] = f"bytes */{size}"
                    return web.Response(status=416, headers=headers)
                status = 206
                headers["Content-Range"] = f"bytes {start}-{end}/{size}"
                self.state.counters.bump("range_requests")
            # Anything else (multiple ranges, other units) is ignored: the full body is served, as RFC 9110 allows.
        length = end - start + 1
        resp = web.StreamResponse(status=status, headers=headers)
        resp.content_type = "video/mp4"
        resp.content_length = length
        await resp.prepare(request)
        if request.method == "HEAD":
            await resp.write_eof()
            return resp

        cut_at = cut(length) if cut is not None else None
        chunk_size = CHUNK_SIZE
        if bytes_per_second:
            chunk_size = int(min(CHUNK_SIZE, max(1024, bytes_per_second / 20)))
        loop = asyncio.get_running_loop()
        iterator = rendered.iter_bytes(chunk_size, start)
        began = loop.time()
        sent = 0
        try:
            while sent < length:
                chunk = await loop.run_in_executor(self.executor, next, iterator, None)
                if not chunk:
                    break
                if len(chunk) > length - sent:
                    chunk = chunk[: length - sent]
                if cut_at is not None and sent + len(chunk) > cut_at:
                    chunk = chunk[: max(0, cut_at - sent)]
                    if chunk:
                        with contextlib.suppress(ConnectionError):
                            await resp.write(chunk)
                        self.state.counters.bump("bytes_served", amount=len(chunk))
                    # cdn_cut fault: close the connection although Content-Length announced more.
                    if request.transport is not None:
                        request.transport.close()
                    return resp
                try:
                    await resp.write(chunk)
                except ConnectionError:  # the client went away
                    return resp
                sent += len(chunk)
                self.state.counters.bump("bytes_served", amount=len(chunk))
                if bytes_per_second:
                    delay = began + sent / bytes_per_second - loop.time()
                    if delay > 0:
                        await asyncio.sleep(delay)
        finally:
            close = getattr(iterator, "close", None)
            if close is not None:
                # ValueError: still running in the executor (the client went away meanwhile).
                with contextlib.suppress(ValueError):
                    close()
        try:
            await resp.write_eof()
        except ConnectionError:
            return resp
        if sent == length and on_complete is not None:
            on_complete()
        return resp
