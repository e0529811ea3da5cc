"""``GenerationResult``: what one generation produced, and how it got there.

>>> r = GenerationResult(video_id="user:1-minimax:2-video:3", video=FinalVideo(url="https://c/v.mp4"))
>>> (r.account, r.posts, r.reconciled)
('2', 1, None)
"""

from __future__ import annotations

from dataclasses import dataclass, field

from minimax_dagster.api.models import FinalVideo, RecommendedTemplate, StreamEvent, parse_composite_id


@dataclass
class GenerationResult:
    """The outcome of one generation: the finished video plus what the stream said on the way.

    ``recovered`` is True when the video was obtained by polling GET videos/{videoId} (a broken stream, a
    reattach, or a job found by reconciliation); ``reconciled`` names where reconciliation found the job
    (``"GET videos/"`` or ``"GET scheduler/available"``) after a create answered 502/503/504 or lost its
    answer; ``posts`` counts the creates sent (0 for a reattach).

    >>> GenerationResult(video_id="v", video=FinalVideo(url="https://c/v.mp4"), started_at=1.0, finished_at=4.5).seconds
    3.5
    """

    video_id: str
    video: FinalVideo
    events: list[StreamEvent] = field(default_factory=list)
    recommended_templates: list[RecommendedTemplate] = field(default_factory=list)
    images: list[str] = field(default_factory=list)
    recovered: bool = False
    started_at: float = 0.0
    finished_at: float = 0.0
    posts: int = 1
    reconciled: str | None = None

    @property
    def account(self) -> str | None:
        """The MiniMax account that made the video (parsed from the video id)."""
        return parse_composite_id(self.video_id).get("minimax")

    @property
    def seconds(self) -> float:
        """Wall-clock seconds from the create (or reattach) to the final state."""
        return max(0.0, self.finished_at - self.started_at)
