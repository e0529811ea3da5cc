"""Reconstructable job factories for the demo (a subprocess of the multiprocess executor imports them by name).

Run one with ``dg.execute_job(dg.reconstructable(daily_job), instance=instance, tags={"dagster/partition": day})``;
each rebuilds its job from the environment:

>>> daily_job().name, dataset_job().name, catalogue_job().name
('daily_videos_job', 'dataset_videos_job', 'catalogue_job')
"""

import dagster as dg

from minimax_dagster.demo.definitions import make_definitions


def daily_job() -> dg.JobDefinition:
    """The daily job, rebuilt from the environment in each process."""
    return make_definitions().resolve_job_def("daily_videos_job")


def dataset_job() -> dg.JobDefinition:
    """The dataset backfill job."""
    return make_definitions().resolve_job_def("dataset_videos_job")


def catalogue_job() -> dg.JobDefinition:
    """The catalogue job."""
    return make_definitions().resolve_job_def("catalogue_job")
