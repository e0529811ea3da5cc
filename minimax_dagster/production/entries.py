"""Manifest entries for one prompt: a failure, or a video made for another prompt (or run) told as this one's.

Every entry names its prompt by ``id`` *and* ``partition``: the same id in two partitions is two rows.

>>> prompt = VideoPrompt(id="fox", prompt="A fox", template_id="1", partition="2024-05-01")
>>> failed_entry(prompt, None, "ValueError: bad").partition
'2024-05-01'
"""

from __future__ import annotations

from minimax_dagster.production.manifest import ManifestEntry
from minimax_dagster.production.prompts import VideoPrompt
from minimax_dagster.storage import VideoKeys


def failed_entry(
    prompt: VideoPrompt, keys: VideoKeys | None, error: str, *, video_id: str | None = None
) -> ManifestEntry:
    """The entry of a prompt that got no video.

    >>> failed_entry(VideoPrompt(id="a", template_id="1"), None, "moderated").status
    'failed'
    """
    return ManifestEntry(
        id=prompt.id,
        partition=prompt.partition,
        prompt=prompt.prompt,
        template_id=prompt.template_id or "",
        status="failed",
        key=keys.key if keys else None,
        video_id=video_id,
        error=error,
        metadata=prompt.metadata,
    )


def entry_for(entry: ManifestEntry, prompt: VideoPrompt) -> ManifestEntry:
    """``entry`` (of the prompt or run that made the video) as the entry of ``prompt``, which reuses it.

    The video's fields stay; the row's own fields (id, partition, prompt, metadata) are ``prompt``'s; a
    video in S3 counts as ``reused`` and carries no timings of this run.

    >>> made = ManifestEntry(id="a", partition="p1", template_id="1", status="generated", generation_seconds=9.0)
    >>> copy = entry_for(made, VideoPrompt(id="a", template_id="1", partition="p2"))
    >>> copy.partition, copy.status, copy.generation_seconds
    ('p2', 'reused', None)
    """
    return entry.model_copy(
        update={
            "id": prompt.id,
            "partition": prompt.partition,
            "prompt": prompt.prompt,
            "metadata": prompt.metadata,
            "status": "reused" if entry.ok else entry.status,
            "generation_seconds": None,
            "upload_seconds": None,
        }
    )
