"""Launch an ASSET backfill of the deployment's partitions: the kind whose failed runs the daemon retries.

``dagster job backfill`` makes a *job* backfill, which is COMPLETED as soon as its runs are created; the daemon
then refuses to retry any of its runs ("Not retrying run since it is part of a backfill that is in a terminal
state (COMPLETED)"), so one blip of PostgreSQL, Redis or RabbitMQ leaves partitions unmaterialized. An *asset*
backfill (what the UI's "Materialize" of partitions launches) stays in progress until every targeted partition
is materialized or failed for good, and waits while a failed run of it is about to be retried
(``run_retries`` in ``deploy/postgres/dagster.yaml``). With the assets' ``BackfillPolicy.multi_run(1)`` it is
still one run per partition.

This module launches one the way the UI does, through Dagster's GraphQL API (``launchPartitionBackfill``), run
in process by the ``dagster-graphql`` command against the workspace (no webserver needed); it imports no
dagster itself. ``python -m minimax_dagster.deployment backfill`` is its command line.

>>> backfill_variables(["a", "b"], {"team": "video"})["backfillParams"]["partitionNames"]
['a', 'b']
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

#: The assets a backfill of the deployment materializes, per partition.
ASSETS = ("batch_prompts", "batch_videos")

LAUNCH_BACKFILL = """
mutation LaunchBackfill($backfillParams: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $backfillParams) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on PythonError { message }
    ... on UnauthorizedError { message }
    ... on InvalidSubsetError { message }
    ... on PartitionSetNotFoundError { message }
  }
}
"""


class BackfillLaunchError(RuntimeError):
    """Dagster refused the backfill; the message is Dagster's, with what was asked."""


def backfill_variables(
    partitions: Sequence[str], tags: Mapping[str, str] | None = None, assets: Sequence[str] = ASSETS
) -> dict[str, Any]:
    """The GraphQL variables of an asset backfill of ``partitions`` of ``assets``.

    >>> backfill_variables(["a"])["backfillParams"]["assetSelection"]
    [{'path': ['batch_prompts']}, {'path': ['batch_videos']}]
    """
    if not partitions:
        raise ValueError("partitions: name at least one partition to backfill")
    return {
        "backfillParams": {
            "assetSelection": [{"path": [name]} for name in assets],
            "partitionNames": list(partitions),
            "tags": [{"key": k, "value": v} for k, v in (tags or {}).items()],
        }
    }


def launch_asset_backfill(
    workspace: Path | str,
    partitions: Sequence[str],
    tags: Mapping[str, str] | None = None,
    *,
    env: Mapping[str, str] | None = None,
    timeout: float = 180.0,
) -> str:
    """Launch an asset backfill of ``partitions`` through the code location(s) of ``workspace``; return its id.

    ``env`` (default ``os.environ``) must hold ``DAGSTER_HOME`` and what the instance file reads.
    """
    command = [
        _dagster_graphql(),
        "-w",
        str(workspace),
        "-t",
        LAUNCH_BACKFILL,
        "-v",
        json.dumps(backfill_variables(partitions, tags)),
    ]
    done = subprocess.run(
        command, env=dict(env or os.environ), capture_output=True, text=True, timeout=timeout, check=False
    )
    return backfill_id_from(done.stdout, done.stderr)


def backfill_id_from(stdout: str, stderr: str = "") -> str:
    """The backfill id in ``dagster-graphql``'s answer, else :class:`BackfillLaunchError` with Dagster's message.

    >>> backfill_id_from('{"data": {"launchPartitionBackfill": {"__typename": "LaunchBackfillSuccess", '
    ...                  '"backfillId": "abc"}}}')
    'abc'
    >>> backfill_id_from('{"data": {"launchPartitionBackfill": {"__typename": "PythonError", "message": "no"}}}')
    Traceback (most recent call last):
    ...
    minimax_dagster.deployment.backfill.BackfillLaunchError: the backfill was not launched: PythonError: no
    """
    start = stdout.find("{")
    try:
        answer = json.loads(stdout[start:]) if start >= 0 else {}
    except json.JSONDecodeError:
        answer = {}
    result = (answer.get("data") or {}).get("launchPartitionBackfill") or {}
    if result.get("__typename") == "LaunchBackfillSuccess":
        return str(result["backfillId"])
    reason = (
        f"{result.get('__typename')}: {result.get('message')}"
        if result
        else (answer.get("errors") or stderr[-2000:] or stdout[-2000:] or "no answer")
    )
    raise BackfillLaunchError(f"the backfill was not launched: {reason}")


def _dagster_graphql() -> str:
    """The ``dagster-graphql`` of this environment (next to the interpreter), else the one on PATH."""
    beside = Path(sys.executable).parent / "dagster-graphql"
    return str(beside) if beside.exists() else (shutil.which("dagster-graphql") or "dagster-graphql")
