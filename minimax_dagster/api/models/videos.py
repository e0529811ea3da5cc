"""Videos: the status of one video (GET videos/{videoId}) and the account's list of videos (GET videos/).

Fields are doc (the get-minimax-videos-videoid and get-minimax-videos pages) unless marked GUESS.

>>> VideoStatus.model_validate({"status": 11}).code.label
'queued'
"""

from __future__ import annotations

from enum import IntEnum
from typing import Any

from pydantic import Field

from minimax_dagster.api.models.base import ApiModel, parse_composite_id
from minimax_dagster.api.models.events import FinalVideo


class VideoStatusCode(IntEnum):
    """``status`` of GET videos/{videoId} (doc: 0, 1, 2, 3, 5, 7, 11, 12, 14; older pages list only 0-2).

    >>> VideoStatusCode(14).is_moderated
    True
    """

    PENDING = 0
    PROCESSING = 1
    COMPLETED = 2
    FAILED = 3
    MODERATED = 5
    MODERATED_7 = 7
    QUEUED = 11
    PROCESSING_12 = 12
    MODERATED_14 = 14

    @property
    def is_moderated(self) -> bool:
        """5, 7 and 14 are moderation outcomes."""
        return self in (VideoStatusCode.MODERATED, VideoStatusCode.MODERATED_7, VideoStatusCode.MODERATED_14)

    @property
    def is_final(self) -> bool:
        """Completed, failed or moderated: the status will not change any more."""
        return self in (VideoStatusCode.COMPLETED, VideoStatusCode.FAILED) or self.is_moderated

    @property
    def label(self) -> str:
        """A short human label."""
        return _STATUS_LABELS[self]


_STATUS_LABELS = {
    VideoStatusCode.PENDING: "pending",
    VideoStatusCode.PROCESSING: "processing",
    VideoStatusCode.COMPLETED: "completed",
    VideoStatusCode.FAILED: "failed",
    VideoStatusCode.MODERATED: "moderated",
    VideoStatusCode.MODERATED_7: "moderated",
    VideoStatusCode.QUEUED: "queued",
    VideoStatusCode.PROCESSING_12: "processing",
    VideoStatusCode.MODERATED_14: "moderated",
}


class OriginFile(ApiModel):
    """An input file of a video (``originFiles``).

    >>> OriginFile.model_validate({"id": "user:1-minimax:2-file:3", "url": "https://c/a.png", "type": "png"}).type
    'png'
    """

    id: str | None = None  # doc: the full fileID, user:<id>-minimax:<account>-file:<id>
    url: str | None = None  # doc
    type: str | None = None  # doc: the image format, e.g. "png"


class VideoStatus(ApiModel):
    """The body of GET videos/{videoId}.

    >>> s = VideoStatus.model_validate({"videoId": "v", "status": 2, "downloadURL": "https://c/n.mp4",
    ...                                 "videoURL": "https://c/w.mp4", "width": 1280, "height": 720})
    >>> (s.is_final, s.is_completed, s.final_video().best_url)
    (True, True, 'https://c/n.mp4')
    """

    # Every field is doc and optional ("all fields are optional").
    id: str | None = None
    video_id: str | None = None  # user:<id>-minimax:<account>-video:<id>
    desc: str | None = None  # the prompt
    cover_url: str | None = Field(None, alias="coverURL")
    video_url: str | None = Field(None, alias="videoURL")  # watermarked
    download_url: str | None = Field(None, alias="downloadURL")  # no watermark, paid accounts only
    status: int | None = None
    status_label: str | None = None
    status_final: bool | None = None
    message: str | None = None
    percent: float | None = None  # 0-100
    width: int | None = None
    height: int | None = None
    duration: float | None = None  # GUESS: not on the pages, sent by the simulator
    origin_files: list[OriginFile] | None = None
    can_appeal: bool | None = None
    can_retry: bool | None = None

    @property
    def code(self) -> VideoStatusCode | None:
        """The status as an enum member, or None for a status this library does not know."""
        try:
            return VideoStatusCode(self.status) if self.status is not None else None
        except ValueError:
            return None

    @property
    def is_final(self) -> bool:
        """True when the video will not change any more."""
        code = self.code
        return bool(self.status_final) or (code is not None and code.is_final)

    @property
    def is_completed(self) -> bool:
        """True when the video is ready."""
        return self.status == VideoStatusCode.COMPLETED

    @property
    def is_failed(self) -> bool:
        """True when generation failed (status 3)."""
        return self.status == VideoStatusCode.FAILED

    @property
    def is_moderated(self) -> bool:
        """True when the video was stopped by moderation (5, 7, 14)."""
        code = self.code
        return code is not None and code.is_moderated

    @property
    def account(self) -> str | None:
        """The MiniMax account of the video (parsed from ``videoId``), or None.

        >>> VideoStatus(video_id="user:1-minimax:55-video:9").account
        '55'
        """
        return parse_composite_id(self.video_id).get("minimax") if self.video_id else None

    @property
    def origin_file_ids(self) -> list[str]:
        """The fileIDs of the video's input images.

        >>> VideoStatus.model_validate({"originFiles": [{"id": "user:1-minimax:2-file:3"}]}).origin_file_ids
        ['user:1-minimax:2-file:3']
        """
        return [f.id for f in self.origin_files or [] if f.id]

    def final_video(self) -> FinalVideo | None:
        """The video as a :class:`FinalVideo`, when completed.

        >>> VideoStatus(status=1).final_video() is None
        True
        """
        url = self.video_url or self.download_url
        if not self.is_completed or not url:
            return None
        return FinalVideo(
            url=url,
            no_watermark_url=self.download_url,
            poster_url=self.cover_url,
            width=self.width,
            height=self.height,
            duration_s=self.duration,
        )


class VideoListItem(VideoStatus):
    """An item of GET videos/ (the account's list): the same fields as GET videos/{videoId} (doc).

    >>> item = VideoListItem.model_validate({"id": "9", "videoId": "user:1-minimax:55-video:9", "desc": "A fox"})
    >>> (item.account, item.page_key)
    ('55', 'user:1-minimax:55-video:9')
    """

    @property
    def page_key(self) -> str | None:
        """What to pass as ``lastVideoId`` to get the page after this item.

        GUESS: the composite ``videoId`` (2nd: an MCP tool description says "pass the last videoId"); the short
        ``id`` when an item has no ``videoId``.
        """
        return self.video_id or self.id


class VideoPage(ApiModel):
    """One page of GET videos/?account=...&limit=...&lastVideoId=... .

    doc: the answer is a JSON array of items. 2nd: a ``hasNext`` flag; GUESS: an object
    ``{"videos"|"videoList"|"items": [...], "hasNext": ...}`` is accepted too, so either shape parses.

    >>> page = VideoPage.from_answer([{"id": "2", "desc": "b"}, {"id": "1", "desc": "a"}])
    >>> ([v.desc for v in page.videos], page.has_next, page.next_key)
    (['b', 'a'], None, '1')
    """

    videos: list[VideoListItem] = Field(default_factory=list)
    has_next: bool | None = None

    @classmethod
    def from_answer(cls, data: Any) -> VideoPage:
        """Parse the API's answer, an array (doc) or an object holding one (GUESS).

        >>> VideoPage.from_answer({"videos": [{"id": "1"}], "hasNext": True}).has_next
        True
        """
        if isinstance(data, list):
            return cls(videos=[VideoListItem.model_validate(item) for item in data])
        if isinstance(data, dict):
            items: list[Any] = next((data[k] for k in _LIST_KEYS if isinstance(data.get(k), list)), [])
            return cls(
                videos=[VideoListItem.model_validate(item) for item in items],
                has_next=data.get("hasNext", data.get("has_next")),
            )
        raise ValueError(f"GET videos/ answered {type(data).__name__}, not a list of videos")

    @property
    def next_key(self) -> str | None:
        """The ``lastVideoId`` of the next page (the last item's key), or None on an empty page."""
        return self.videos[-1].page_key if self.videos else None

    def more_after(self, limit: int) -> bool:
        """Whether another page may follow: ``hasNext`` when sent, else whether this page was full.

        >>> VideoPage.from_answer([{"id": "1"}]).more_after(limit=1)
        True
        """
        if self.has_next is not None:
            return self.has_next and bool(self.videos)
        return len(self.videos) >= limit > 0


# GUESS: keys an object-shaped answer might hold its items under (the page documents a bare array).
_LIST_KEYS = ("videos", "videoList", "items", "list")
