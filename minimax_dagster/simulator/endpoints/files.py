"""POST files (upload an image) and GET files (the images used for generation).

doc (post-minimax-files page): raw bytes as the body, ``Content-Type: image/png`` or ``image/jpeg`` (``.webp``
"using Content-Type: image/jpeg"), ``?account=`` required when several accounts are configured; 200
``{"ossPath": "<file url>", "fileID": "user:<id>-minimax:<account>-file:<id>"}``. The size limit is disputed
(5 MB vs 5 GB): ``max_upload_bytes`` and the 413 are GUESSES.

doc (get-minimax-files page): ``account`` as above, ``limit`` default 10, "Only images that were actually used for
generation will be shown"; items ``{file_id, file_name, file_type ("jpeg"), cdn_url, oss_path (a path), file_scene,
file_status}``. Newest first is a GUESS.
"""

from __future__ import annotations

from aiohttp import web

from ..state import UploadedFile
from .common import ApiError, json_response, origin_of, query_limit, state_of, target_account

__all__ = ["list_files", "upload_file"]

_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_JPEG_MAGIC = b"\xff\xd8\xff"


async def upload_file(request: web.Request) -> web.Response:
    """POST files: store the image on the account, answer its ossPath and fileID."""
    state = state_of(request)
    ctype = request.content_type.lower()
    if ctype not in ("image/png", "image/jpeg"):
        raise ApiError(400, f"Content-Type must be image/png or image/jpeg, got {ctype or 'none'!r}")
    account = target_account(state, request.query.get("account"))
    limit = state.config.max_upload_bytes
    if request.content_length is not None and request.content_length > limit:
        raise ApiError(413, f"File too large: {request.content_length} bytes, the limit is {limit} bytes")
    chunks, size = [], 0
    async for chunk in request.content.iter_chunked(1 << 16):
        size += len(chunk)
        if size > limit:
            raise ApiError(413, f"File too large: more than {limit} bytes")
        chunks.append(chunk)
    data = b"".join(chunks)
    if not data:
        raise ApiError(400, "The body is empty: send the image bytes as the request body")
    is_png, is_jpeg = data.startswith(_PNG_MAGIC), data.startswith(_JPEG_MAGIC)
    is_webp = data[:4] == b"RIFF" and data[8:12] == b"WEBP"  # doc: send webp as image/jpeg
    if not (is_png or is_jpeg or is_webp):
        raise ApiError(400, "The body is not a PNG or JPEG image")
    if is_png and ctype != "image/png":
        raise ApiError(400, "The body is a PNG image but Content-Type is not image/png")
    if (is_jpeg or is_webp) and ctype != "image/jpeg":
        raise ApiError(400, "The body is a JPEG/WebP image but Content-Type is not image/jpeg")
    numeric_id = state.new_id()
    ext = "png" if is_png else "jpg"
    oss_path = f"{origin_of(request)}/cdn/files/{account}/{numeric_id}.{ext}"
    file = UploadedFile(
        file_id=f"user:{state.config.user_id}-minimax:{account}-file:{numeric_id}",
        numeric_id=numeric_id,
        account=account,
        content_type=ctype,
        data=data,
        oss_path=oss_path,
        file_name=f"{numeric_id}.{ext}",
    )
    state.files[file.file_id] = file
    state.files_by_numeric[numeric_id] = file
    state.counters.bump("uploads")
    return json_response({"ossPath": oss_path, "fileID": file.file_id})


async def list_files(request: web.Request) -> web.Response:
    """GET files: the account's images that a create used, newest first, ``limit`` of them."""
    state = state_of(request)
    account = target_account(state, request.query.get("account"))
    limit = query_limit(request, default=10)  # doc: default 10
    files = [f for f in state.files.values() if f.account == account and f.used]
    files.sort(key=lambda f: f.created_at, reverse=True)
    return json_response([f.listing() for f in files[:limit]])
