"""Names vulture cannot see used (read by ``vulture``, never imported; ``make test`` runs it).

Each line names one attribute; the comment says who uses it. Framework hooks that are called by name
(``load_input``, ``get_spec``, ...) are in ``[tool.vulture] ignore_names`` of pyproject.toml instead.
"""

# The public API's methods and the read-only figures users (and the tests) read.
_.agent_create  # MiniMaxClient: the one-call create, for users who drive their own loop (README)
_.iter_videos  # ApiEndpoints: paging helpers for users (README)
_.iter_templates
_.last_event_id  # SseParser: what the stream said so far, for callers and the tests
_.comments_seen
_.bytes_seen
_.discarded_partial_event
_.busy  # CreatesFirst: whether a create is under way (the tests watch the gate with it)
_.sidecar_uri  # ManifestEntry: fields of the manifest users read (JSON in S3)
_.source_url
_.upload_seconds
_.max_in_memory_upload_chunks  # s3transfer reads it from the TransferConfig it is given
_.decode_content  # urllib3 reads it from the response it is given

# The simulator is a test tool: these are what its users (the tests, the benchmarks) call.
_.input_kind
_.parse
_.read_all

# The component's YAML attributes (dagster reads the fields of the model).
_.end_date
_.end_offset
_.hour_offset
_.minute_offset

# Read by the docs hook (tools/mkdocs_hooks.py), which vulture does not scan.
_.option_descriptions
