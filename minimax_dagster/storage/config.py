"""How storage talks to S3: the botocore client config, the transfer config and the part-size limits.

>>> cfg = transfer_config()  # DEFAULT_PART_SIZE parts, two at a time
>>> cfg.multipart_chunksize == DEFAULT_PART_SIZE, cfg.max_request_concurrency
(True, 2)
"""

from __future__ import annotations

import boto3.s3.transfer
import botocore.config

__all__ = [
    "DEFAULT_MAX_BYTES",
    "DEFAULT_PART_SIZE",
    "MIN_PART_SIZE",
    "s3_client_config",
    "transfer_config",
]

KiB = 1024
MiB = 1024 * KiB
GiB = 1024 * MiB

DEFAULT_MAX_BYTES = 8 * GiB
DEFAULT_PART_SIZE = 16 * MiB
MIN_PART_SIZE = 5 * MiB  # S3's minimum size of every part but the last
MAX_PART_SIZE = 5 * GiB
MAX_PARTS = 10_000


def s3_client_config(*, max_attempts: int = 5, max_pool_connections: int = 64) -> botocore.config.Config:
    """botocore config for S3 and S3-compatible servers.

    Checksums only when an operation requires them (botocore >= 1.36 otherwise adds
    CRC checksums that several S3-compatible servers reject), standard retries, and a connection
    pool larger than botocore's 10, which a producer's worker and upload threads would overflow.

    >>> cfg = s3_client_config()
    >>> cfg.request_checksum_calculation, cfg.retries["mode"], cfg.max_pool_connections
    ('when_required', 'standard', 64)
    """
    return botocore.config.Config(
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
        retries={"max_attempts": max_attempts, "mode": "standard"},
        max_pool_connections=max_pool_connections,
    )


def transfer_config(
    part_size: int = DEFAULT_PART_SIZE, max_concurrency: int = 2
) -> boto3.s3.transfer.TransferConfig:
    """Transfer config whose memory use is bounded by about ``part_size * (max_concurrency + 1)``.

    ``max_in_memory_upload_chunks`` (default 10 in s3transfer) is lowered to ``max_concurrency``
    so that a fast source cannot queue up parts in memory faster than S3 takes them.

    >>> cfg = transfer_config(8 * 1024 * 1024, 2)
    >>> cfg.multipart_chunksize, cfg.max_in_memory_upload_chunks
    (8388608, 2)
    """
    check_part_size(part_size)
    if max_concurrency < 1:
        raise ValueError(f"max_concurrency must be >= 1, got {max_concurrency}")
    cfg = boto3.s3.transfer.TransferConfig(
        multipart_threshold=part_size,
        multipart_chunksize=part_size,
        max_concurrency=max_concurrency,
        use_threads=True,
        preferred_transfer_client="classic",  # the CRT client has its own (unbounded here) buffering
    )
    cfg.max_in_memory_upload_chunks = max_concurrency
    return cfg


def check_part_size(part_size: int) -> None:
    """Raise ``ValueError`` unless S3 accepts parts of ``part_size`` bytes.

    >>> check_part_size(MiB)
    Traceback (most recent call last):
    ...
    ValueError: part_size must be between 5242880 (5 MiB, S3's minimum part size) and 5368709120 bytes, got 1048576
    """
    if not MIN_PART_SIZE <= part_size <= MAX_PART_SIZE:
        raise ValueError(
            f"part_size must be between {MIN_PART_SIZE} (5 MiB, S3's minimum part size) and "
            f"{MAX_PART_SIZE} bytes, got {part_size}"
        )
