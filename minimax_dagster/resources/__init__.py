"""The Dagster resources: the MiniMax API (with its accounts) and S3, and the JSON IO manager."""
