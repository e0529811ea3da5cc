"""S3 storage layer: deterministic keys, safe streaming downloads into S3, small JSON objects, job records, claims.

It knows S3 (through a boto3 client passed in) and HTTP downloads (through a ``requests.Session`` passed in), and
nothing about Dagster, the MiniMax API client or the producer. One module per job:

========================  ==================================================================================
``keys``                  content keys of video requests and the object keys derived from them
``config``                the botocore client config, the transfer config, part sizes
``errors``                the errors storage raises; ``redact`` keeps secrets out of their messages
``policy``                the download policy: which URLs may be fetched (SSRF rules), size cap, timeouts
``download``              fetching a URL under the policy, and the counting, size-capped body reader
``upload``                streaming a URL into S3 (single PUT or multipart), nothing left behind on failure
``multipart``             finding and aborting open multipart uploads
``objects``               small objects: bytes, JSON, conditional writes, HEAD, the first bytes of an object
``records``               job records: per video key, its claim and the crash-resume record of the paid job
``claims``                cross-process claims through S3 conditional writes; ``claim_keeper`` renews them
========================  ==================================================================================

>>> keys = VideoKeys("minimax", video_key("392747428568649728", "a cat surfing", None))
>>> keys.video.startswith("minimax/videos/v1-") and keys.video.endswith(".mp4")
True
"""

from minimax_dagster.storage.claim_keeper import ClaimKeeper
from minimax_dagster.storage.claims import (
    Claim,
    ClaimHandle,
    claim_body,
    host_identity,
    pid_alive,
    read_claim,
    release_claim,
    replace_claim,
    try_claim,
)
from minimax_dagster.storage.config import (
    DEFAULT_MAX_BYTES,
    DEFAULT_PART_SIZE,
    MIN_PART_SIZE,
    s3_client_config,
    transfer_config,
)
from minimax_dagster.storage.download import FillingReader, open_download
from minimax_dagster.storage.errors import (
    CorruptObject,
    DownloadFailed,
    DownloadRefused,
    DownloadTooLarge,
    ObjectTooLarge,
    StorageError,
    UploadFailed,
)
from minimax_dagster.storage.job_records import (
    JobRecord,
    read_job_record,
    read_job_record_with_etag,
    write_job_record,
)
from minimax_dagster.storage.keys import (
    KEY_VERSION,
    VideoKeys,
    normalize_prefix,
    prompt_sha256,
    s3_uri,
    safe_key_part,
    video_key,
)
from minimax_dagster.storage.multipart import abort_stale_multipart_uploads
from minimax_dagster.storage.objects import (
    condition_failed,
    delete_if,
    get_json,
    head_object,
    put_bytes,
    put_bytes_if,
    put_json,
    read_head_bytes,
    read_object,
)
from minimax_dagster.storage.policy import DownloadPolicy
from minimax_dagster.storage.redact import redact_url
from minimax_dagster.storage.upload import UploadResult, upload_from_url

__all__ = [
    "DEFAULT_MAX_BYTES",
    "DEFAULT_PART_SIZE",
    "KEY_VERSION",
    "MIN_PART_SIZE",
    "Claim",
    "ClaimHandle",
    "ClaimKeeper",
    "CorruptObject",
    "DownloadFailed",
    "DownloadPolicy",
    "DownloadRefused",
    "DownloadTooLarge",
    "FillingReader",
    "JobRecord",
    "ObjectTooLarge",
    "StorageError",
    "UploadFailed",
    "UploadResult",
    "VideoKeys",
    "abort_stale_multipart_uploads",
    "claim_body",
    "condition_failed",
    "delete_if",
    "get_json",
    "head_object",
    "host_identity",
    "normalize_prefix",
    "open_download",
    "pid_alive",
    "prompt_sha256",
    "put_bytes",
    "put_bytes_if",
    "put_json",
    "read_claim",
    "read_head_bytes",
    "read_job_record",
    "read_job_record_with_etag",
    "read_object",
    "redact_url",
    "release_claim",
    "replace_claim",
    "s3_client_config",
    "s3_uri",
    "safe_key_part",
    "transfer_config",
    "try_claim",
    "upload_from_url",
    "video_key",
    "write_job_record",
]
