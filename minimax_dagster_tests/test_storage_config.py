"""The botocore client config and the transfer config (minimax_dagster.storage.config)."""

from __future__ import annotations

import pytest

from minimax_dagster.storage import s3_client_config, transfer_config
from minimax_dagster_tests.storage_support import PART

MiB = 1024 * 1024


def test_s3_client_config() -> None:
    cfg = s3_client_config()
    assert cfg.request_checksum_calculation == "when_required"
    assert cfg.response_checksum_validation == "when_required"
    assert cfg.retries == {"max_attempts": 5, "mode": "standard"}


def test_transfer_config_bounds_memory() -> None:
    cfg = transfer_config(PART, 3)
    assert (cfg.multipart_threshold, cfg.multipart_chunksize) == (PART, PART)
    assert cfg.max_request_concurrency == 3
    assert cfg.max_in_memory_upload_chunks == 3
    with pytest.raises(ValueError, match="part_size"):
        transfer_config(MiB)
