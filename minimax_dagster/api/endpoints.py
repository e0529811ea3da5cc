"""``ApiEndpoints``: the client's plain calls, one method per endpoint (videos, templates, files, accounts).

``account`` is taken, and sent, wherever the docs make it required with several accounts: GET videos/,
GET videos/agent-templates, POST files and GET files.

>>> sniff_image_type(b"\\xff\\xd8\\xff\\xe0....")
'image/jpeg'
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from pathlib import Path

from minimax_dagster.api.errors import AnswerLostError, BadRequestError, MiniMaxError, ServerError
from minimax_dagster.api.models import (
    Account,
    AgentTemplate,
    FileInfo,
    SchedulerAvailable,
    TemplateDetail,
    TemplateList,
    UploadedFile,
    VideoListItem,
    VideoPage,
    VideoStatus,
    split_video_accounts,
)
from minimax_dagster.api.retry import backoff_seconds
from minimax_dagster.api.transport import ApiTransport

logger = logging.getLogger("minimax_dagster.api.client")

#: Answers after which a POST may have done its work (doc: 502/504 "while still accepting jobs"; 503 likewise).
MAYBE_DONE_STATUSES = frozenset({502, 503, 504})


class ApiEndpoints(ApiTransport):
    """One method per endpoint; :class:`~minimax_dagster.api.client.MiniMaxClient` adds generation on top.

    >>> from minimax_dagster.simulator import MiniMaxSimulator
    >>> with MiniMaxSimulator() as sim, ApiEndpoints(sim.token, base_url=sim.base_url) as api:
    ...     sorted(api.get_accounts())
    ['100001', '100002']
    """

    #: Retries of an upload answered 502/503/504 or lost (a second upload makes no paid job).
    max_retries: int = 5
    backoff_factor: float = 2.0
    backoff_max: float = 30.0
    #: The accounts a create naming none may go to (None: the video accounts of GET accounts).
    accounts: tuple[str, ...] | None = None

    def get_video(self, video_id: str) -> VideoStatus:
        """GET videos/{videoId}: the status of one video.

        >>> from minimax_dagster.api import MiniMaxClient
        >>> from minimax_dagster.simulator import MiniMaxSimulator
        >>> with MiniMaxSimulator(generation_seconds=0.1) as sim, MiniMaxClient(sim.token, base_url=sim.base_url) as c:
        ...     made = c.generate({"templateId": "394100000000000003", "prompt": "A red fox"})
        ...     c.get_video(made.video_id).is_completed
        True
        """
        return VideoStatus.model_validate(self._get_json(f"videos/{video_id}"))

    def list_videos(
        self, account: str | None = None, limit: int = 30, last_video_id: str | None = None
    ) -> VideoPage:
        """GET videos/: one page of an account's videos, newest first (GUESS: the page does not say).

        doc: "Retrieve the list of videos you have generated" on one hailuoai.video account, running ones and
        those made in the web app included; ``account`` is optional with one account configured and required
        with several; ``limit`` defaults to 30; ``lastVideoId`` starts after that video (pass ``page.next_key``).

        >>> client = ApiEndpoints("t", base_url="http://127.0.0.1:9/v1/minimax")
        >>> client.list_videos("1234567", limit=10)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        minimax_dagster.api.errors.ConnectionFailedError: GET videos/: cannot reach the API (...)
        """
        data = self._get_json("videos/", {"account": account, "limit": limit, "lastVideoId": last_video_id})
        try:
            return VideoPage.from_answer(data)
        except ValueError as exc:
            raise MiniMaxError(f"GET videos/: {exc}") from None

    def iter_videos(
        self, account: str | None = None, page_size: int = 30, *, max_pages: int | None = None
    ) -> Iterator[VideoListItem]:
        """Every video of an account, page after page (at most ``max_pages`` pages when given).

        >>> client = ApiEndpoints("t", base_url="http://127.0.0.1:9/v1/minimax")
        >>> videos = client.iter_videos("1234567", page_size=10)  # nothing is sent until iterated
        >>> client.close()
        """
        last: str | None = None
        pages = 0
        while max_pages is None or pages < max_pages:
            page = self.list_videos(account, page_size, last)
            pages += 1
            yield from page.videos
            if not page.more_after(page_size):
                return
            last = page.next_key

    # ------------------------------------------------------------------------------------------ templates, files

    def list_templates(
        self, limit: int = 30, last_id: str | None = None, *, account: str | None = None
    ) -> TemplateList:
        """GET videos/agent-templates: one page of templates (``account`` required with several accounts, doc).

        >>> from minimax_dagster.simulator import MiniMaxSimulator
        >>> with MiniMaxSimulator() as sim, ApiEndpoints(sim.token, base_url=sim.base_url) as c:
        ...     page = c.list_templates(limit=2, account="100001")
        >>> len(page.video_list)
        2
        """
        data = self._get_json(
            "videos/agent-templates", {"limit": limit, "lastId": last_id, "account": account}
        )
        return TemplateList.model_validate(data)

    def iter_templates(self, page_size: int = 30, *, account: str | None = None) -> Iterator[AgentTemplate]:
        """Every template, page after page.

        >>> from minimax_dagster.simulator import MiniMaxSimulator
        >>> with MiniMaxSimulator() as sim, ApiEndpoints(sim.token, base_url=sim.base_url) as c:
        ...     names = [t.name for t in c.iter_templates(page_size=2, account="100001")]
        >>> "Diving" in names
        True
        """
        last_id: str | None = None
        while True:
            page = self.list_templates(page_size, last_id, account=account)
            yield from page.video_list
            more = page.has_next if page.has_next is not None else len(page.video_list) >= page_size
            if not more or not page.video_list:
                return
            last_id = page.video_list[-1].id

    def get_template(self, template_id: str, *, account: str | None = None) -> TemplateDetail:
        """GET videos/agent-templates?templateId=...: what one template needs (``account`` as for the list).

        >>> from minimax_dagster.simulator import MiniMaxSimulator
        >>> with MiniMaxSimulator() as sim, ApiEndpoints(sim.token, base_url=sim.base_url) as c:
        ...     c.get_template("392747428568649728", account="100001").requires_image
        True
        """
        data = self._get_json("videos/agent-templates", {"templateId": template_id, "account": account})
        return TemplateDetail.model_validate(data)

    def upload_file(
        self,
        path_or_bytes: str | Path | bytes,
        content_type: str | None = None,
        *,
        account: str | None = None,
    ) -> UploadedFile:
        """POST files: upload a PNG or JPEG image for templates that need one; returns its fileID and ossPath.

        ``account`` is sent as ``?account=`` (doc: required with several accounts; the file belongs to it and
        only creates on that account can use it). The content type is detected from the bytes when not given
        (WebP is sent as image/jpeg, as the API asks). A second upload makes no paid job, so an upload answered
        502/503/504 or lost is sent again (up to ``max_retries`` times).

        >>> client = ApiEndpoints("t", base_url="http://127.0.0.1:9/v1/minimax")
        >>> client.upload_file(b"GIF89a...", account="1234567")
        Traceback (most recent call last):
        ...
        minimax_dagster.api.errors.BadRequestError: upload_file: the data is not a PNG, JPEG or WebP image; pass an image file
        """
        data = path_or_bytes if isinstance(path_or_bytes, bytes) else Path(path_or_bytes).read_bytes()
        kind = content_type or sniff_image_type(data)
        if kind is None:
            raise BadRequestError(
                "upload_file: the data is not a PNG, JPEG or WebP image; pass an image file"
            )
        if kind == "image/webp":
            kind = "image/jpeg"
        sends = 0
        while True:
            sends += 1
            try:
                response = self._request(
                    "POST",
                    "files",
                    params={"account": account} if account else None,
                    data=data,
                    headers={"Content-Type": kind},
                )
                return UploadedFile.model_validate(self._read_json("POST", "files", response))
            except (ServerError, AnswerLostError) as exc:
                if isinstance(exc, ServerError) and exc.status not in MAYBE_DONE_STATUSES:
                    raise
                if sends > self.max_retries:
                    raise
                logger.warning("upload failed (%s); sending it again", exc)
                time.sleep(backoff_seconds(sends, factor=self.backoff_factor, maximum=self.backoff_max))

    def list_files(self, account: str | None = None, limit: int = 10) -> list[FileInfo]:
        """GET files: images of an account (doc: only those used for a generation; ``limit`` defaults to 10;
        ``account`` required with several accounts; a later page says the endpoint may return no data).

        >>> from minimax_dagster.simulator import MiniMaxSimulator
        >>> with MiniMaxSimulator() as sim, ApiEndpoints(sim.token, base_url=sim.base_url) as c:
        ...     c.list_files("100001")
        []
        """
        data = self._get_json("files", {"account": account, "limit": limit})
        if not isinstance(data, list):
            raise MiniMaxError(f"GET files answered {type(data).__name__}, not a list of files")
        return [FileInfo.model_validate(item) for item in data]

    # ------------------------------------------------------------------------------------------ accounts

    def get_accounts(self) -> dict[str, Account]:
        """GET accounts: the configured MiniMax accounts (see :func:`split_video_accounts` for the usable ones).

        >>> from minimax_dagster.simulator import MiniMaxSimulator
        >>> with MiniMaxSimulator() as sim, ApiEndpoints(sim.token, base_url=sim.base_url) as c:
        ...     sorted(c.get_accounts())
        ['100001', '100002']
        """
        data = self._get_json("accounts")
        return {str(k): Account.model_validate(v) for k, v in (data or {}).items()}

    def video_account_names(self) -> list[str]:
        """The accounts a create naming no account may go to: ``accounts`` when given, else those GET accounts
        lists with ``supportVideo`` and no ``error`` (as useapi's own client, doc).

        >>> from minimax_dagster.api import MiniMaxClient
        >>> MiniMaxClient("t", base_url="http://127.0.0.1:9/v1/minimax", accounts=["1", "2"]).video_account_names()
        ['1', '2']
        """
        if self.accounts is not None:
            return list(self.accounts)
        usable, skipped = split_video_accounts(self.get_accounts())
        if skipped:
            logger.info("accounts not used for videos: %s", skipped)
        return list(usable)

    def get_scheduler(self) -> SchedulerAvailable:
        """GET scheduler/available: jobs executing now and the free capacity of each account.

        >>> from minimax_dagster.simulator import MiniMaxSimulator
        >>> with MiniMaxSimulator() as sim, ApiEndpoints(sim.token, base_url=sim.base_url) as c:
        ...     sorted(a.account for a in c.get_scheduler().available)
        ['100001', '100002']
        """
        return SchedulerAvailable.model_validate(self._get_json("scheduler/available"))

    def find_executing_job(self, reply_ref: str) -> str | None:
        """The video id of an executing video job created with ``reply_ref`` (GET scheduler/available), or None.

        Reconciliation already does this (and more) before any second create; this is for callers holding a
        replyRef of their own, for example after a crash.

        >>> from minimax_dagster.simulator import MiniMaxSimulator
        >>> with MiniMaxSimulator() as sim, ApiEndpoints(sim.token, base_url=sim.base_url) as c:
        ...     c.find_executing_job("row-7") is None
        True
        """
        try:
            scheduler = self.get_scheduler()
        except MiniMaxError as exc:
            logger.warning("cannot look up executing jobs (%s)", exc)
            return None
        for job in scheduler.executing:
            if job.reply_ref == reply_ref and job.is_video and job.video_id:
                return job.video_id
        return None


def sniff_image_type(data: bytes) -> str | None:
    """The image MIME type from the first bytes, or None.

    >>> sniff_image_type(b"\\x89PNG\\r\\n\\x1a\\n....")
    'image/png'
    """
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None
