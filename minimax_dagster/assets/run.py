"""``MiniMaxVideoRun``: what a video asset does when it materializes, as an event iterator.

Built the way dagster-fivetran's event iterator is: the asset's body is ``yield from
MiniMaxVideoRun(context, options).events(prompts)``, and the run goes through three passes, each a method.

1. :meth:`~MiniMaxVideoRun.plan` — the accounts' capacity is found (video accounts only, the skipped ones said
   with why); the prompts of each partition are validated, with the templates looked up on an account the
   run will use, and given their ``partition``. Nothing is paid for or written before it returns a
   :class:`VideoPlan`.
   Between this pass and the next: with ``dry_run``, :meth:`~MiniMaxVideoRun.dry_run` reports what the run
   would do (:mod:`~minimax_dagster.assets.dry_run`) and the run ends there; with ``max_new_videos``, a run that
   would create more paid jobs fails before the first create.
2. :meth:`~MiniMaxVideoRun.produce` — multipart uploads an interrupted run left behind are aborted; the
   producer makes the videos; its notes become log lines and counts
   (:class:`~minimax_dagster.production.progress.VideoProgress`) and its entries are attributed to ``(partition, id)``.
3. :meth:`~MiniMaxVideoRun.report` — one manifest per partition, each partition's materialization with its own
   metadata (``context.add_asset_metadata(..., partition_key=...)``: counts, timings, table, video ids, manifest
   path, ``dagster/row_count``), the run-wide totals once in a log line, the value, and the failure when
   prompts failed.

A dry run yields no output: the asset is not materialized, so downstream assets and the checks see no dry-run
value (Dagster skips them in that run); the report is an ``AssetObservation`` per partition, flagged
``dry_run``, and log lines.

>>> options = VideoAssetOptions(asset_name="videos", bucket="b", prefix="minimax", template_id="1")
>>> options.with_run_config(allow_partial=True, regenerate_failed=None, max_new_videos=3).max_new_videos
3
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import dagster as dg

from minimax_dagster.api.client import MiniMaxClient
from minimax_dagster.api.errors import CreateOutcomeUnknownError, MiniMaxError, NotFoundError
from minimax_dagster.api.models import CapacityByAccount, TemplateDetail
from minimax_dagster.assets.dry_run import PlanReport, cap_failure
from minimax_dagster.assets.options import RECORDS_PER_SECOND, VideoAssetOptions
from minimax_dagster.assets.plan import VideoPlan, rows_of, validated_rows
from minimax_dagster.budget.report import (
    dry_run_lines,
    over_budget,
    spend_metadata,
    state_metadata,
    warnings,
)
from minimax_dagster.metadata.links import VideoLinks
from minimax_dagster.metadata.markdown import MAX_LISTED
from minimax_dagster.metadata.tables import materialization_metadata
from minimax_dagster.metadata.thumbnails import THUMBNAIL_ROWS, PosterThumbnails
from minimax_dagster.production.bounded_log import BoundedLog
from minimax_dagster.production.budget import RunBudget
from minimax_dagster.production.budget_windows import WindowState
from minimax_dagster.production.manifest import ManifestEntry, VideoManifest
from minimax_dagster.production.preview import ProductionPlan
from minimax_dagster.production.producer import VideoProducer
from minimax_dagster.production.progress import PromptBook, PromptKey, VideoProgress, display
from minimax_dagster.production.prompts import VideoPrompt
from minimax_dagster.production.store import PosterHandler
from minimax_dagster.resources.io_manager import PartitionedValues, S3JsonIOManager
from minimax_dagster.resources.minimax import MiniMaxResource, s3_client_from_resource
from minimax_dagster.storage import abort_stale_multipart_uploads


@dataclass(frozen=True)
class Production:
    """What :meth:`MiniMaxVideoRun.produce` hands to :meth:`MiniMaxVideoRun.report`."""

    entries: dict[PromptKey, ManifestEntry]
    progress: VideoProgress
    seconds: float
    #: The posters' thumbnails, made while the other videos were generating (closed by the report).
    thumbnails: PosterThumbnails


class MiniMaxVideoRun:
    """One materialization of a video asset: ``yield from MiniMaxVideoRun(context, options).events(prompts)``.

    ``context`` is the asset's execution context (its resources hold the MiniMax resource, the S3 resource
    and the IO manager under the option's keys); ``prompts`` is the upstream asset's value.
    """

    def __init__(self, context: dg.AssetExecutionContext, options: VideoAssetOptions) -> None:
        self.context = context
        self.options = options
        self.minimax: MiniMaxResource = getattr(context.resources, options.minimax_resource_key)
        self.s3 = s3_client_from_resource(getattr(context.resources, options.s3_resource_key))
        self._budget: RunBudget | None = None

    def events(self, prompts: Any) -> Iterator[dg.Output[Any]]:
        """Plan, produce and report; yields the asset's output (raises ``dg.Failure`` after it when prompts
        failed and partial results are not allowed). A dry run yields nothing (see :meth:`dry_run`); with
        ``max_new_videos``, a run that would create more paid videos fails before the first create."""
        plan = self.plan(prompts)
        if self.options.dry_run:
            self.dry_run(plan)
            return
        if self.options.max_new_videos is not None:
            self.check_cap(plan, self.options.max_new_videos)
        production = self.produce(plan)
        yield from self.report(plan, production)

    # ------------------------------------------------------------------------------------------ plan

    def plan(self, prompts: Any) -> VideoPlan:
        """Validate every partition's prompts (all problems reported together, before any create), find the
        capacity and clean up after interrupted runs."""
        options, log = self.options, self.context.log
        by_partition = self._split_by_partition(prompts)
        with self.minimax.get_client() as client:
            capacity = self.minimax.capacity_by_account(client)
            if capacity.skipped or capacity.problem:
                log.warning(f"accounts: {capacity.describe()}")
            templates = None
            if options.check_templates:
                # doc: the look-up needs an account when several are configured; any the run uses will do.
                account = next(iter(capacity), None)
                templates = self._lookup_templates(client, by_partition, account)
            rows = validated_rows(by_partition, options.template_id, templates)
        plan = VideoPlan(
            rows=rows,
            capacity=capacity,
            several=self.context.has_partition_key_range and len(rows) > 1,
            templates=templates,
        )
        shown = ", ".join(f"{a} x {n}" for a, n in capacity.items()) or f"{self.minimax.default_max_jobs}"
        log.info(f"{plan.total} prompt(s) in {len(rows)} partition(s); capacity {shown}")
        return plan

    def _split_by_partition(self, prompts: Any) -> dict[str | None, list[Any]]:
        context = self.context
        if not (context.has_partition_key or context.has_partition_key_range):
            return {None: rows_of(prompts, None)}
        keys = context.partition_keys
        if len(keys) == 1 and not (isinstance(prompts, Mapping) and set(prompts) == set(keys)):
            return {keys[0]: rows_of(prompts, keys[0])}
        if not isinstance(prompts, Mapping):
            raise dg.Failure(
                "prompts for several partitions must arrive as {partition_key: rows}", allow_retries=False
            )
        missing = [k for k in keys if k not in prompts]
        if missing:
            context.log.warning(f"no prompts for partition(s) {missing[:10]}; they get empty manifests")
        return {k: rows_of(prompts.get(k, []), k) for k in keys}

    def _lookup_templates(
        self, client: MiniMaxClient, by_partition: dict[str | None, list[Any]], account: str | None
    ) -> dict[str, TemplateDetail | None]:
        default = self.options.template_id
        wanted: Counter[str] = Counter()
        for rows in by_partition.values():
            for row in rows:
                if isinstance(row, Mapping):
                    tid = row.get("template_id") or row.get("templateId")
                else:
                    tid = getattr(row, "template_id", None)
                tid = tid if tid is not None else default
                if tid is not None:
                    wanted[str(tid)] += 1
        if default and default not in wanted:
            wanted[default] = 0
        out: dict[str, TemplateDetail | None] = {}
        on = f" on account {account}" if account else " (no account known to send)"
        for tid in sorted(wanted):
            try:
                out[tid] = client.get_template(tid, account=account)
            except NotFoundError:
                out[tid] = None
            except MiniMaxError as exc:
                self.context.log.warning(
                    f"cannot look up template {tid}{on} ({exc}): its {wanted[tid]} row(s) are NOT checked for "
                    "whether the template exists, takes a text prompt or needs an image, and a dry run shows no "
                    "credits for them; a row it refuses fails at its create (answered 400/404, before a job)"
                )
        return out

    # ------------------------------------------------------------------------------------------ dry run, cap

    def dry_run(self, plan: VideoPlan) -> ProductionPlan:
        """Report what the run would do, per prompt, without creating or writing anything: a log line per
        prompt, the run's summary, and one ``AssetObservation`` per partition flagged ``dry_run`` (counts,
        credits when the template detail gives them, a table). No output is yielded, so nothing is
        materialized and no downstream asset sees a dry-run value."""
        preview = self._producer(plan).plan(plan.prompts)
        report = PlanReport(preview, plan.templates)
        log = BoundedLog(self.context.log)
        for line in report.lines():
            log.add("info", line)
        log.add("info", report.summary())
        budget = self.budget(plan)
        states = budget.states() if budget.active else []
        for line in dry_run_lines(preview.new_videos, *report.credits(preview.outcomes), states):
            log.add("info", line)
        log.flush()
        by_partition: dict[str | None, list[Any]] = {partition: [] for partition in plan.rows}
        for outcome in preview.outcomes:
            by_partition.setdefault(outcome.prompt.partition, []).append(outcome)
        for partition, outcomes in by_partition.items():
            self.context.log_event(
                dg.AssetObservation(
                    asset_key=self.context.asset_key,
                    partition=partition,
                    description=report.summary(outcomes),
                    metadata={**report.metadata(outcomes), **state_metadata(states)},
                )
            )
        return preview

    def check_cap(self, plan: VideoPlan, cap: int) -> ProductionPlan:
        """Fail (before the first create) when the run would create more than ``cap`` paid videos."""
        preview = self._producer(plan).plan(plan.prompts)
        if preview.new_videos > cap:
            raise cap_failure(preview, cap, self.context.op_def.name)
        self.context.log.info(f"{preview.new_videos} new paid video(s) planned, within max_new_videos={cap}")
        return preview

    def budget(self, plan: VideoPlan) -> RunBudget:
        """This step's reservations: the resource's budget and the run's ``max_new_videos``, enforced at each
        create (made once per step)."""
        if self._budget is None:
            options, budget = self.options, self.minimax.budget
            self._budget = RunBudget(
                self.s3,
                options.bucket,
                budget.policy() if budget is not None else None,
                run_id=self.context.run.run_id,
                asset=options.asset_name,
                run_cap=options.max_new_videos,
                template_credits={t: (d.credits if d else None) for t, d in (plan.templates or {}).items()},
            )
        return self._budget

    def _producer(self, plan: VideoPlan, on_poster: PosterHandler | None = None) -> VideoProducer:
        options = self.options
        settings = self.minimax.producer_settings(
            bucket=options.bucket,
            prefix=options.prefix,
            accounts=plan.capacity,
            regenerate_failed=options.regenerate_failed,
            asset_name=options.asset_name,
            generation_hint=recent_generation_seconds(self.context.instance, self.context.asset_key),
        )
        return VideoProducer(
            self.minimax.get_client, self.s3, settings, on_poster=on_poster, budget=self.budget(plan)
        )

    # ------------------------------------------------------------------------------------------ produce

    def produce(self, plan: VideoPlan) -> Production:
        """Clean up after interrupted runs, then run the producer over the plan's prompts, following each video
        in the log."""
        options = self.options
        videos = f"{options.prefix}/videos/" if options.prefix else "videos/"
        aborted = abort_stale_multipart_uploads(self.s3, options.bucket, videos)
        if aborted:
            self.context.log.warning(
                f"aborted {aborted} multipart upload(s) left by an earlier, interrupted run"
            )
        book = PromptBook(plan.prompts)
        # The table's first rows get thumbnails: each is made as soon as its poster is stored, in the
        # background and from the bytes the producer just stored (no read back), so that the step's end does
        # not wait for them (the report makes any still missing, reading the poster from S3).
        thumbnailed = {
            (partition, p.id) for partition, prompts in plan.rows.items() for p in prompts[:THUMBNAIL_ROWS]
        }
        thumbnails = PosterThumbnails(self.s3)

        def on_poster(prompt: VideoPrompt, poster_uri: str, image: bytes) -> None:
            if (prompt.partition, prompt.id) in thumbnailed:
                thumbnails.offer(poster_uri, image)

        producer = self._producer(plan, on_poster)
        # Every heartbeat asked for: each gets its own record again, as long as the writes keep up.
        records_per_second = math.inf if options.log_heartbeats else RECORDS_PER_SECOND
        progress = VideoProgress(
            BoundedLog(self.context.log, records_per_second=records_per_second),
            book,
            log_heartbeats=options.log_heartbeats,
            summary_interval=options.summary_interval,
        )
        entries: dict[PromptKey, ManifestEntry] = {}
        started = time.monotonic()
        try:
            for note in producer.run(book.producer_prompts()):
                settled = progress.note(note)
                if settled is not None:
                    key, entry = settled
                    entries[key] = entry
                    if key in thumbnailed:
                        thumbnails.add(entry)
        except BaseException:
            thumbnails.close()
            progress.finish()
            raise
        # The last lines stay queued: the report writes them with the run's totals (one record if behind).
        return Production(
            entries=entries, progress=progress, seconds=time.monotonic() - started, thumbnails=thumbnails
        )

    # ------------------------------------------------------------------------------------------ report

    def report(self, plan: VideoPlan, production: Production) -> Iterator[dg.Output[Any]]:
        """Give each partition its manifest and its own metadata, log the run's totals, yield the value."""
        totals = None
        budget = self.budget(plan)
        states = budget.states() if budget.active else []
        try:
            manifests = {
                partition: VideoManifest(
                    asset=self.options.asset_name,
                    partition=partition,
                    requested_ids=[p.id for p in prompts],
                    entries=[
                        production.entries[(partition, p.id)]
                        for p in prompts
                        if (partition, p.id) in production.entries
                    ],
                )
                for partition, prompts in plan.rows.items()
            }
            for partition, manifest in manifests.items():
                self._add_partition_metadata(partition, manifest, production, plan.capacity, budget, states)
            totals = _totals_line(manifests, production)
        finally:
            production.thumbnails.close()
            production.progress.finish(totals)
        everything = [e for m in manifests.values() for e in m.entries]
        value: Any = PartitionedValues(manifests) if plan.several else next(iter(manifests.values()))
        # No output metadata: it would be copied onto every partition's materialization.
        yield dg.Output(value)

        self._say_budget(everything, states, budget)
        failed = [e for e in everything if not e.ok]
        unknown = [e for e in failed if (e.error or "").startswith(CreateOutcomeUnknownError.__name__)]
        if unknown:
            self.context.log.error(
                f"{len(unknown)} create(s) may have made a paid job that could not be found: "
                + ", ".join(display((e.partition, e.id)) for e in unknown[:MAX_LISTED])
                + "; the step is not retried (a retry would create them again): see each row's error"
            )
        if failed and not self.options.allow_partial:
            lines = "\n".join(f"  - {display((e.partition, e.id))}: {e.error}" for e in failed[:MAX_LISTED])
            raise dg.Failure(
                description=(
                    f"{len(failed)} of {len(everything)} prompt(s) failed; the {len(everything) - len(failed)} "
                    f"video(s) made are kept and will be reused by a re-run:\n{lines}"
                ),
                metadata={
                    "failed_prompts": dg.MetadataValue.json(
                        [{"partition": e.partition, "id": e.id, "error": e.error} for e in failed]
                    )
                },
                # A retry would send again the creates whose outcome is unknown: it could pay twice.
                allow_retries=not unknown,
            )

    def _add_partition_metadata(
        self,
        partition: str | None,
        manifest: VideoManifest,
        production: Production,
        capacity: Mapping[str, int],
        budget: RunBudget,
        states: list[WindowState],
    ) -> None:
        # The capacity is the run's, not the partition's: it is in the log, not here, unless accounts were
        # skipped (no video support, in error) or unknown, which explains where every partition's jobs went.
        events = production.progress.events.get(partition, Counter())
        links = VideoLinks.from_s3_client(
            self.s3,
            public_base_url=self.options.video_link_base_url,
            presign_seconds=self.options.presign_links_seconds,
        )
        metadata = dict(
            materialization_metadata(
                manifest.entries,
                events,
                links=links,
                thumbnails=production.thumbnails.for_entries(manifest.entries),
                manifest_uri=self._manifest_uri(partition),
            )
        )
        metadata["dagster/row_count"] = len(manifest.entries)
        metadata.update(spend_metadata(manifest.entries, budget.credits_of))
        metadata.update(state_metadata(states))
        if isinstance(capacity, CapacityByAccount) and (capacity.skipped or capacity.problem):
            metadata["accounts"] = capacity.describe()
            metadata["accounts_skipped"] = dg.MetadataValue.json(capacity.skipped)
        if partition is None:
            self.context.add_asset_metadata(metadata)
        else:
            self.context.add_asset_metadata(metadata, partition_key=partition)

    def _say_budget(self, entries: list[ManifestEntry], states: list[WindowState], budget: RunBudget) -> None:
        """The budget after the run: each window's state, a warning at ``warn_at`` of one, the prompts it stopped."""
        log = self.context.log
        for state in states:
            log.info(state.describe())
        warn_at = budget.policy.warn_at if budget.policy else 0.8
        for line in warnings(states, warn_at):
            log.warning(line)
        stopped = over_budget(entries)
        if stopped:
            log.warning(
                f"{len(stopped)} prompt(s) not created because the budget is spent: "
                + ", ".join(display((e.partition, e.id)) for e in stopped[:MAX_LISTED])
                + (f" and {len(stopped) - MAX_LISTED} more" if len(stopped) > MAX_LISTED else "")
            )

    def _manifest_uri(self, partition: str | None) -> str | None:
        """Where the IO manager stores this partition's manifest, when it is ours (other IO managers: unknown)."""
        io_manager = getattr(self.context.resources, self.options.io_manager_key, None)
        if isinstance(io_manager, S3JsonIOManager):
            return io_manager.uri_for(self.context.asset_key, partition)
        return None


def recent_generation_seconds(
    instance: dg.DagsterInstance, asset_key: dg.AssetKey, *, look_back: int = 10
) -> float | None:
    """The median generation time (``generation_seconds_median``) of the asset's newest materialization, any
    partition, that generated something (of the last ``look_back``: a re-run that reused every video has no
    median); ``None`` when there is none. The producer's shared account pool paces its looks at accounts full
    in S3 from it, before this run's own generations tell (a hint: any failure to read it is ``None``).

    >>> instance = dg.DagsterInstance.ephemeral()
    >>> recent_generation_seconds(instance, dg.AssetKey("videos")) is None
    True
    >>> instance.report_runless_asset_event(
    ...     dg.AssetMaterialization("videos", metadata={"generation_seconds_median": 12.5}))
    >>> recent_generation_seconds(instance, dg.AssetKey("videos"))
    12.5
    """
    try:
        records = instance.fetch_materializations(asset_key, limit=look_back).records
    except Exception:  # a pacing hint: reading it must never fail a step about to produce paid videos
        return None
    for record in records:
        materialization = record.asset_materialization
        value = materialization.metadata.get("generation_seconds_median") if materialization else None
        seconds = getattr(value, "value", value)
        if isinstance(seconds, (int, float)) and not isinstance(seconds, bool) and 0 < seconds < math.inf:
            return float(seconds)
    return None


def _totals_line(manifests: Mapping[str | None, VideoManifest], production: Production) -> str:
    """The run-wide totals, said once (each partition's materialization carries only its own)."""
    counts: Counter[str] = Counter()
    stored = 0
    for manifest in manifests.values():
        counts.update(manifest.counts())
        stored += sum(e.bytes or 0 for e in manifest.entries if e.ok)
    statuses = production.progress.statuses
    return (
        f"run total: {counts['requested']} prompt(s) in {len(manifests)} partition(s) in "
        f"{production.seconds:.1f} s: {counts['generated']} generated, {counts['reused']} reused, "
        f"{counts['failed']} failed; {stored} bytes stored; {sum(statuses.values())} stream event(s) and "
        f"poll(s), {statuses['heartbeat']} heartbeat(s)"
    )
