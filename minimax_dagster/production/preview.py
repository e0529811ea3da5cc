"""What a run would do, found by reading only: which prompts would be paid for, reused or reattached.

:meth:`VideoProducer.plan <minimax_dagster.production.producer.VideoProducer.plan>` looks at what the producer
would look at (the stored video and its sidecar, the job record) without claiming, writing, uploading or
creating anything, and decides each prompt the way the per-video steps (:mod:`~minimax_dagster.production.steps`)
would at that moment:

==============  =====================================================================================
``create``      nothing in S3 and no job record (or an earlier failure with ``regenerate_failed``): paid
``reuse``       the video and its sidecar are in S3: nothing is created
``reattach``    a job record holds the video id of an earlier run's job: awaited, not created again
``same_video``  an earlier prompt of the run asks for the same video (template, text, image): made once
``known_fail``  an earlier run's video failed (``regenerate_failed`` is off), or the image is unusable
==============  =====================================================================================

It is a snapshot: another run may store a video between the plan and the run (one create fewer), never add one.

>>> fox = VideoPrompt(id="fox", prompt="A fox", template_id="1")
>>> plan = ProductionPlan([PlannedOutcome(fox, "create", "v1-abc"), PlannedOutcome(fox, "reuse", "v1-def")])
>>> plan.new_videos, plan.counts()
(1, {'create': 1, 'reuse': 1, 'reattach': 0, 'same_video': 0, 'known_fail': 0})
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from minimax_dagster.production.prompts import VideoPrompt

Decision = Literal["create", "reuse", "reattach", "same_video", "known_fail"]

#: Every decision, in the order reports list them.
DECISIONS: tuple[Decision, ...] = ("create", "reuse", "reattach", "same_video", "known_fail")


@dataclass(frozen=True)
class PlannedOutcome:
    """What would happen to one prompt: the decision, the video key, the known video id and why.

    >>> PlannedOutcome(VideoPrompt(id="a", template_id="1"), "reattach", "v1-a", video_id="v9").paid
    False
    """

    prompt: VideoPrompt
    decision: Decision
    key: str | None
    video_id: str | None = None
    reason: str = ""

    @property
    def paid(self) -> bool:
        """Whether this prompt would make a new, paid job."""
        return self.decision == "create"


@dataclass(frozen=True)
class ProductionPlan:
    """The planned outcome of every prompt, in the prompts' order.

    >>> ProductionPlan([]).new_videos
    0
    """

    outcomes: list[PlannedOutcome]

    @property
    def new_videos(self) -> int:
        """How many paid jobs the run would create."""
        return sum(o.paid for o in self.outcomes)

    def counts(self) -> dict[str, int]:
        """How many prompts get each decision (every decision named, zeros included)."""
        out: dict[str, int] = dict.fromkeys(DECISIONS, 0)
        for outcome in self.outcomes:
            out[outcome.decision] += 1
        return out
