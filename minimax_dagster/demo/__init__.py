"""The demo: a daily content pipeline and prompt-dataset backfills, on the embedded simulator and S3 server.

``python -m minimax_dagster.demo`` runs it end to end; ``python -m minimax_dagster.demo --ui`` starts the same
services and ``dg dev`` on :mod:`minimax_dagster.demo.definitions`.
"""
