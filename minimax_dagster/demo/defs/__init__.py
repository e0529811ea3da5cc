"""The demo's YAML defs folder (``dg``'s ``defs_module`` of this repository): one folder per component.

``daily_videos_yaml/defs.yaml`` is the daily pipeline written as a :class:`~minimax_dagster.MiniMaxVideoComponent`.
:func:`minimax_dagster.demo.yaml_pipeline.yaml_definitions` loads it into the demo code location.
"""
