"""The demo's YAML pipeline: the defs folder ``minimax_dagster/demo/defs/`` loaded as ``dg`` loads a project's.

>>> defs = yaml_definitions()
>>> [a.key.to_user_string() for a in defs.assets]
['daily_videos_yaml']
"""

from pathlib import Path

import dagster as dg
from dagster.components.core.component_tree import ComponentTree

import minimax_dagster.demo.defs as defs_module


def yaml_definitions() -> dg.Definitions:
    """The definitions of every ``defs.yaml`` under ``minimax_dagster/demo/defs/`` (no network call).

    Built from the package itself rather than from ``pyproject.toml``'s ``[tool.dg]``, so it also loads where the
    package is installed without this repository around it. The project root is the folder holding the package
    (this repository's root in a checkout), as ``dg`` has it.
    """
    project_root = Path(defs_module.__file__).resolve().parents[3]
    return ComponentTree(defs_module=defs_module, project_root=project_root).build_defs()
