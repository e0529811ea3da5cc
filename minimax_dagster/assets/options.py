"""The options of a video asset, each described once (:class:`AssetOptions`), and what a run makes of them.

:func:`~minimax_dagster.assets.factory.build_minimax_video_asset` takes them as keyword arguments or as
``options=``; :class:`~minimax_dagster.components.video.component.MiniMaxVideoComponent` inherits them as YAML
attributes (each field's ``dg.Resolver`` says how ``defs.yaml`` writes it and carries its description, which the
component's schema and the docs' options table show). A new option is one field here.

>>> options = VideoAssetOptions(asset_name="videos", bucket="b", prefix="minimax", template_id="1")
>>> options.with_run_config(allow_partial=True, regenerate_failed=None, max_new_videos=3).max_new_videos
3
"""

import dataclasses
from dataclasses import dataclass
from typing import Annotated, Any

import dagster as dg

from minimax_dagster.assets.yaml_values import located_error, render, text_field
from minimax_dagster.storage import normalize_prefix

#: Event-log records a second the run's progress lines may take (with a few saved up); faster lines share
#: records. Each record is a synchronous event-log write costing the step's thread a few ms of CPU.
RECORDS_PER_SECOND = 1.0


def _resolve_bucket(context: dg.ResolutionContext, raw: Any) -> str:
    return text_field(
        context, "bucket", raw, "set it (export MINIMAX_BUCKET=my-video-bucket) or write the bucket's name"
    )


def _resolve_prefix(context: dg.ResolutionContext, raw: Any) -> str:
    value = text_field(context, "prefix", raw, "write a key prefix such as minimax", allow_empty=True)
    try:
        return normalize_prefix(value)
    except ValueError as exc:
        raise located_error(context, str(exc)) from None


def resolve_text(context: dg.ResolutionContext, raw: Any) -> str | None:
    """A text attribute as written (``"0123"`` stays text, ``null`` stays ``None``), templates rendered.

    >>> from dagster.components.resolved.context import ResolutionContext
    >>> resolve_text(ResolutionContext.default(), "0123"), resolve_text(ResolutionContext.default(), None)
    ('0123', None)
    """
    value = render(context, raw)
    return None if value is None else str(value)


def _text(description: str, resolve: Any = resolve_text, **extra: Any) -> dg.Resolver:
    return dg.Resolver(
        resolve, model_field_type=str, inject_before_resolve=False, description=description, **extra
    )


def _doc(description: str) -> dg.Resolver:
    return dg.Resolver.default(description=description)


@dataclass(kw_only=True)
class AssetOptions:
    """How a video asset produces its videos: the one description of each option (the factory's keyword
    arguments, the component's YAML attributes, the docs' table). Dagster's own asset arguments (partitions,
    policies, group, tags, ...) are passed as in ``dg.asset`` and are not repeated here.

    >>> AssetOptions(bucket="b", prefix="media/").prefix, AssetOptions(bucket="b").summary_interval
    ('media', 30.0)
    >>> AssetOptions(bucket="b", max_new_videos=-1)
    Traceback (most recent call last):
    ...
    ValueError: max_new_videos must be 0 or more (0 allows no new paid video), got -1; leave it None for no cap
    """

    bucket: Annotated[
        str,
        dg.Resolver(
            _resolve_bucket,
            model_field_type=str,
            inject_before_resolve=False,
            description="S3 bucket of the videos, posters, sidecars, job records and manifests.",
            examples=["{{ env.MINIMAX_BUCKET }}"],
        ),
    ]
    template_id: Annotated[
        str | None, _text("Template of the rows that name none (GET videos/agent-templates lists them).")
    ] = None
    prefix: Annotated[
        str,
        _text("Key prefix in the bucket (<prefix>/videos/...). Empty: the bucket root.", _resolve_prefix),
    ] = "minimax"
    description: Annotated[
        str | None,
        _text("The asset's description, shown in the UI (default: which asset its prompts come from)."),
    ] = None
    pool: Annotated[
        str | None,
        _text("Dagster pool of the step; limit it in dagster.yaml so runs share the accounts' capacity."),
    ] = "minimax"
    allow_partial: Annotated[
        bool, _doc("Materialize even when some prompts failed (they are listed in the metadata).")
    ] = False
    regenerate_failed: Annotated[
        bool, _doc("Pay for a new attempt of prompts whose earlier video failed.")
    ] = False
    check_templates: Annotated[
        bool, _doc("Look templates up before creating anything, to refuse rows they cannot take.")
    ] = True
    max_new_videos: Annotated[
        int | None,
        _doc(
            "Fail before the first create when a run would create more new paid videos than this, and hold "
            "the cap at each create across the run's steps and processes (run config max_new_videos "
            "overrides it; run config dry_run: true shows what would be paid; none: no cap). The daily or "
            "monthly budget is the resource's."
        ),
    ] = None
    log_heartbeats: Annotated[
        bool,
        _doc(
            "Also log every heartbeat, processing state and poll at debug. Off: a video logs only its "
            "milestones (at most five records) and the rest is summed up every summary_interval seconds."
        ),
    ] = False
    summary_interval: Annotated[
        float, _doc("Seconds between the run's progress lines (done / generating / waiting / failed).")
    ] = 30.0
    video_link_base_url: Annotated[
        str | None,
        _text(
            "A CDN or public base URL in front of the bucket for the table's video links. Without it they "
            "point at the S3 endpoint (MinIO, moto) or, on AWS, the S3 console page."
        ),
    ] = None
    presign_links_seconds: Annotated[
        int,
        _doc(
            "Above 0, the links are presigned S3 URLs valid this long (at most 7 days; they are bearer "
            "credentials kept in metadata forever, so this is opt-in and the expiry is shown)."
        ),
    ] = 0

    def __post_init__(self) -> None:
        if self.max_new_videos is not None and self.max_new_videos < 0:
            raise ValueError(
                f"max_new_videos must be 0 or more (0 allows no new paid video), got {self.max_new_videos}; "
                "leave it None for no cap"
            )
        self.prefix = normalize_prefix(self.prefix)

    def asset_options(self) -> "AssetOptions":
        """Just the options (of a component or the run's state, which add fields of their own).

        >>> type(VideoAssetOptions(asset_name="v", bucket="b").asset_options()).__name__
        'AssetOptions'
        """
        return AssetOptions(**{f.name: getattr(self, f.name) for f in dataclasses.fields(AssetOptions)})


#: The names of the options, in the order they are described.
OPTION_NAMES = tuple(f.name for f in dataclasses.fields(AssetOptions))


def option_descriptions() -> list[tuple[str, Any, str]]:
    """Each option's name, default and description (the docs' options table is made of these).

    >>> option_descriptions()[0]
    ('bucket', None, 'S3 bucket of the videos, posters, sidecars, job records and manifests.')
    """
    rows: list[tuple[str, Any, str]] = []
    hints = AssetOptions.__annotations__
    for f in dataclasses.fields(AssetOptions):
        resolver = next(m for m in hints[f.name].__metadata__ if isinstance(m, dg.Resolver))
        default = None if f.default is dataclasses.MISSING else f.default
        rows.append((f.name, default, resolver.description or ""))
    return rows


@dataclass(kw_only=True)
class VideoAssetOptions(AssetOptions):
    """The options of one run's asset: :class:`AssetOptions`, the asset's name and resource keys, and run config
    (``allow_partial``, ``regenerate_failed``, ``max_new_videos`` and ``dry_run``).

    >>> VideoAssetOptions(asset_name="videos", bucket="b", prefix="p").summary_interval
    30.0
    """

    asset_name: str
    minimax_resource_key: str = "minimax"
    s3_resource_key: str = "s3"
    io_manager_key: str = "minimax_io_manager"
    dry_run: bool = False

    def with_run_config(
        self,
        allow_partial: bool | None,
        regenerate_failed: bool | None,
        *,
        dry_run: bool = False,
        max_new_videos: int | None = None,
    ) -> "VideoAssetOptions":
        """These options with the run's config applied (``None`` keeps the factory's value)."""
        return dataclasses.replace(
            self,
            allow_partial=self.allow_partial if allow_partial is None else allow_partial,
            regenerate_failed=self.regenerate_failed if regenerate_failed is None else regenerate_failed,
            dry_run=dry_run,
            max_new_videos=self.max_new_videos if max_new_videos is None else max_new_videos,
        )
