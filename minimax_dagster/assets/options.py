"""What the factory fixes for one video asset, and what run config may change of it.

>>> options = VideoAssetOptions(asset_name="videos", bucket="b", prefix="minimax", template_id="1")
>>> options.with_run_config(allow_partial=True, regenerate_failed=None, max_new_videos=3).max_new_videos
3
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

#: Event-log records a second the run's progress lines may take (with a few saved up); faster lines share
#: records. Each record is a synchronous event-log write costing the step's thread a few ms of CPU.
RECORDS_PER_SECOND = 1.0


@dataclass(frozen=True)
class VideoAssetOptions:
    """What the factory fixed for one video asset (see :func:`~minimax_dagster.assets.factory.build_minimax_video_asset`
    for each option); ``allow_partial`` and ``regenerate_failed`` may be overridden by run config.

    >>> VideoAssetOptions(asset_name="videos", bucket="b", prefix="p").summary_interval
    30.0
    """

    asset_name: str
    bucket: str
    prefix: str
    template_id: str | None = None
    check_templates: bool = True
    allow_partial: bool = False
    regenerate_failed: bool = False
    log_heartbeats: bool = False
    summary_interval: float = 30.0
    video_link_base_url: str | None = None
    presign_links_seconds: int = 0
    minimax_resource_key: str = "minimax"
    s3_resource_key: str = "s3"
    io_manager_key: str = "minimax_io_manager"
    max_new_videos: int | None = None
    dry_run: bool = False

    def with_run_config(
        self,
        allow_partial: bool | None,
        regenerate_failed: bool | None,
        *,
        dry_run: bool = False,
        max_new_videos: int | None = None,
    ) -> VideoAssetOptions:
        """These options with the run's config applied (``None`` keeps the factory's value)."""
        return dataclasses.replace(
            self,
            allow_partial=self.allow_partial if allow_partial is None else allow_partial,
            regenerate_failed=self.regenerate_failed if regenerate_failed is None else regenerate_failed,
            dry_run=dry_run,
            max_new_videos=self.max_new_videos if max_new_videos is None else max_new_videos,
        )
