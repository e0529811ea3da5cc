"""The Dagster compatibility matrix: one nox session per supported dagster pair, each in a venv of its own.

* ``oldest``: dagster 1.12.0 / dagster-aws 0.28.0 (no partitioned checks, no ``ComponentTypeSpec.produces``),
  the whole suite;
* ``between``: dagster 1.13.0 / dagster-aws 0.29.0 (partitioned checks, no ``produces``), the Dagster-layer
  tests (component, execution, checks, the quickstart with ``create-dagster`` and ``dg``) and the Dagster
  layer's doctests;
* ``newest``: the newest pair pip resolves, the whole suite (what ``make test`` already runs in ``.venv``, so
  ``.ci/run`` does not run this session).

Every integration is pinned with its dagster release (dagster 1.X.N goes with dagster-aws, dagster-postgres and
dagster-celery 0.(X+16).N, dagster-webserver, dagster-dg-cli and create-dagster 1.X.N), and ``pip check`` must
agree. Run ``.venv/bin/nox -s oldest between`` (``make compat``); ``-R`` reuses the venvs of an earlier run.
"""

import nox

nox.options.default_venv_backend = "venv"
nox.options.sessions = ["oldest", "between"]

#: The oldest supported release (the floor of pyproject's ranges; .ci/install_check reads this line).
OLDEST_DAGSTER = "1.12.0"
#: A release between the oldest and the newest, with its own set of features (see minimax_dagster.compat).
BETWEEN_DAGSTER = "1.13.0"

#: The Dagster layer's tests and the modules whose doctests depend on the Dagster release.
DAGSTER_LAYER = [
    "minimax_dagster_tests/test_component.py",
    "minimax_dagster_tests/test_execution.py",
    "minimax_dagster_tests/test_dagster.py",
    "minimax_dagster_tests/test_quickstart.py",
    "minimax_dagster_tests/test_asset_options.py",
    "minimax_dagster/compat.py",
    "minimax_dagster/assets",
    "minimax_dagster/components",
]


def pair(dagster: str) -> list[str]:
    """The requirements pinning dagster ``dagster`` and every integration of its release.

    >>> pair("1.12.0")[:2]
    ['dagster==1.12.0', 'dagster-aws==0.28.0']
    """
    _, minor, patch = dagster.split(".")
    integration = f"0.{int(minor) + 16}.{patch}"
    return [
        f"dagster=={dagster}",
        f"dagster-aws=={integration}",
        f"dagster-postgres=={integration}",
        f"dagster-celery[redis]=={integration}",
        f"dagster-webserver=={dagster}",
        f"dagster-dg-cli=={dagster}",
        f"create-dagster=={dagster}",
    ]


def install(session: nox.Session, *pins: str) -> None:
    session.install("--disable-pip-version-check", "--quiet", "-e", ".[dev]", *pins)
    session.run("pip", "check")
    session.run(
        "python",
        "-c",
        "import importlib.metadata as m; print('dagster pair:', "
        "', '.join(p + ' ' + m.version(p) for p in ('dagster', 'dagster-aws', 'dagster-dg-cli')))",
    )


@nox.session
def oldest(session: nox.Session) -> None:
    """The whole suite on the oldest supported pair (the infrastructure-fault tests included)."""
    install(session, *pair(OLDEST_DAGSTER))
    session.run("python", "-m", "pytest", "-q", "-p", "no:cacheprovider", *session.posargs)


@nox.session
def between(session: nox.Session) -> None:
    """The Dagster-layer tests on a release between the oldest and the newest."""
    install(session, *pair(BETWEEN_DAGSTER))
    session.run("python", "-m", "pytest", "-q", "-p", "no:cacheprovider", *DAGSTER_LAYER, *session.posargs)


@nox.session
def newest(session: nox.Session) -> None:
    """The whole suite on the newest pair pip resolves (``make test`` runs the same in .venv)."""
    install(session)
    session.run("python", "-m", "pytest", "-q", "-p", "no:cacheprovider", *session.posargs)
