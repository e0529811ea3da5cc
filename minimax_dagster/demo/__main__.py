"""The demo command: ``python -m minimax_dagster.demo`` (what ``make demo`` runs).

It starts the embedded MiniMax simulator and S3 server, then, on a real Dagster instance with the multiprocess
executor:

1. materializes one day of the daily pipeline (``daily_prompts`` → ``daily_videos``);
2. registers the seeded prompt datasets as partitions and backfills all of them in ONE run;
3. builds the downstream ``video_catalogue``;
4. re-runs the day to show that nothing is paid for twice;
5. copies every video and poster out of S3 into ``demo_output/`` (of the current folder; ``--output`` names
   another, relative to the current folder) and prints their S3 URIs.

The console shows the demo's own progress and the video table: its Dagster instance has telemetry off, and the
runs' console loggers, in the run process and in every step process, print warnings and errors only (the full
logs are in the instance, ``<output>/.dagster_home``).

``--ui`` starts the same services and ``dg dev`` instead (:mod:`minimax_dagster.demo.ui`).
"""

import argparse
import datetime as dt
import logging
import os
import shutil
import sys
import warnings
from importlib import resources
from pathlib import Path
from typing import Any

import dagster as dg
import yaml

from minimax_dagster.demo.jobs import catalogue_job, daily_job, dataset_job
from minimax_dagster.demo.services import DEMO_DATASETS, demo_services
from minimax_dagster.embedded import EmbeddedServices
from minimax_dagster.production.manifest import VideoManifest
from minimax_dagster.storage import get_json

#: Console logging of the runs: warnings and errors only (the full logs are in the Dagster instance / UI).
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
#: Added to the package's instance settings (telemetry off, the pool) for the demo command's own instance. A step
#: process announces itself through Dagster's default console logger, which ignores the run config and prints at
#: ``python_log_level`` (DEBUG when unset). That setting also filters what ``context.log`` writes to the event
#: log, so it is INFO, not WARNING: the step workers' DEBUG start lines leave the console, the videos' info lines
#: stay in the instance.
STEP_PROCESS_LOGS = {"python_logs": {"python_log_level": "INFO"}}


def write_instance_yaml(home: Path) -> Path:
    """Write the demo command's ``dagster.yaml`` into ``home`` (telemetry off, quiet step processes).

    >>> import tempfile
    >>> settings = yaml.safe_load(write_instance_yaml(Path(tempfile.mkdtemp())).read_text())
    >>> settings["telemetry"], settings["python_logs"]
    ({'enabled': False}, {'python_log_level': 'INFO'})
    """
    settings = yaml.safe_load(resources.files("minimax_dagster.demo").joinpath("dagster.yaml").read_text())
    path = home / "dagster.yaml"
    path.write_text(yaml.safe_dump({**settings, **STEP_PROCESS_LOGS}, sort_keys=False))
    return path


def _run(instance: dg.DagsterInstance, job_fn: Any, tags: dict[str, str] | None = None) -> dg.DagsterRun:
    with dg.execute_job(
        dg.reconstructable(job_fn), instance=instance, tags=tags or {}, run_config=QUIET
    ) as result:
        if not result.success:
            failures = [e.message or "" for e in result.all_events if e.is_failure]
            raise SystemExit(f"demo run {result.run_id} failed:\n" + "\n".join(failures[:10]))
        return result.dagster_run


def run_demo(output: Path, day: str, generation_seconds: float) -> int:
    """Run the whole demo; returns a process exit code.

    ``output`` may be relative (to the current folder): every path derived from it is absolute, as Dagster
    requires of ``DAGSTER_HOME``.
    """
    output = output.expanduser().resolve()
    output.mkdir(parents=True, exist_ok=True)
    home = output / ".dagster_home"
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir()
    write_instance_yaml(home)
    with demo_services(generation_seconds=generation_seconds) as services:
        os.environ.update(services.env())
        os.environ["DAGSTER_HOME"] = str(home)
        print(f"services: {services.describe()}")
        with dg.DagsterInstance.get() as instance:
            print(f"1/4 daily pipeline for {day} ...")
            _run(
                instance,
                daily_job,
                {"dagster/partition": day},
            )
            names = sorted(DEMO_DATASETS)
            instance.add_dynamic_partitions("prompt_datasets", names)
            print(f"2/4 backfill of {len(names)} prompt datasets in one run ...")
            _run(
                instance,
                dataset_job,
                {
                    "dagster/asset_partition_range_start": names[0],
                    "dagster/asset_partition_range_end": names[-1],
                },
            )
            print("3/4 video catalogue ...")
            _run(instance, catalogue_job)
            creates = services.simulator.counters()["creates"]
            print(f"4/4 re-running {day}: finished videos are reused, nothing is created ...")
            _run(instance, daily_job, {"dagster/partition": day})
            again = services.simulator.counters()["creates"]
            print(f"    creates before the re-run: {creates}, after: {again}")
        copied = _copy_out(services, output, day, names)
        if again != creates:
            print("ERROR: the re-run created videos again", file=sys.stderr)
            return 1
    print(f"\n{copied} videos with their posters are in {output}/")
    print(f"Dagster instance with the runs, logs and metadata: DAGSTER_HOME={home}")
    return 0


def _copy_out(services: EmbeddedServices, output: Path, day: str, datasets: list[str]) -> int:
    s3 = services.s3_client()
    bucket, prefix = services.bucket, services.prefix
    manifests: dict[str, VideoManifest] = {}
    for asset, partition in [("daily_videos", day), *(("dataset_videos", n) for n in datasets)]:
        data = get_json(s3, bucket, f"{prefix}/assets/{asset}/{partition}.json")
        if data is not None:
            manifests[f"{asset}/{partition}"] = VideoManifest.model_validate(data)
    count = 0
    print("\nvideo id | S3 URI | local file")
    for where, manifest in manifests.items():
        folder = output / where
        folder.mkdir(parents=True, exist_ok=True)
        for entry in manifest.entries:
            if not entry.ok or not entry.s3_uri:
                print(f"{entry.id}: {entry.status} {entry.error or ''}")
                continue
            for uri, suffix in ((entry.s3_uri, ".mp4"), (entry.poster_uri, ".png")):
                if not uri:
                    continue
                key = uri.removeprefix(f"s3://{bucket}/")
                s3.download_file(bucket, key, str(folder / f"{entry.id}{suffix}"))
            count += 1
            print(f"{entry.video_id} | {entry.s3_uri} | {folder / (entry.id + '.mp4')}")
    return count


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--ui", action="store_true", help="start the services and the Dagster UI instead")
    parser.add_argument("--port", type=int, default=3000, help="Dagster UI port (with --ui)")
    parser.add_argument(
        "--simulator-port", type=int, default=8765, help="the simulator's port (with --ui; 0: any free port)"
    )
    parser.add_argument("--output", type=Path, default=Path("demo_output"), help="where videos are copied")
    parser.add_argument(
        "--day",
        default=dt.datetime.now(dt.timezone.utc).date().isoformat(),
        help="the daily partition to run",
    )
    parser.add_argument("--generation-seconds", type=float, default=3.0, help="simulated generation time")
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore", category=dg.BetaWarning)
    warnings.filterwarnings("ignore", category=dg.PreviewWarning)
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's request log
    if args.ui:
        from minimax_dagster.demo.ui import exit_at_once, run_ui

        exit_at_once(run_ui(args.port, args.generation_seconds, args.simulator_port))
    return run_demo(args.output, args.day, args.generation_seconds)


if __name__ == "__main__":
    sys.exit(main())
