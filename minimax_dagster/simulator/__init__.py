"""A local simulator of the useapi.net MiniMax API (``videos/agent-create`` and its neighbours).

It is the embedded default every demo, test and benchmark of this project runs on (no internet needed)::

    from minimax_dagster.simulator import MiniMaxSimulator

    with MiniMaxSimulator(generation_seconds=0.5, heartbeat_seconds=0.1) as sim:
        sim.base_url   # "http://127.0.0.1:<port>/v1/minimax"
        sim.origin     # "http://127.0.0.1:<port>" (the CDN lives under /cdn/)
        sim.token      # the bearer token accepted ("sim-token")
        sim.counters() # what the clients did, see "Counters"

or from a shell: ``python -m minimax_dagster.simulator --port 8765 [--generation-seconds 30]
[--fault drop_after=3 ...] [--video-bytes N]``.

The simulator never imports the project's client, models or SSE parser (each one tests the other) and never
imports dagster.

Why aiohttp
-----------
agent-create answers with a long-lived ``text/event-stream`` (minutes in the real API). aiohttp runs on
asyncio, so one thread serves many concurrent long-lived streams (50+ on a 2-core machine) without a thread
per connection; its ``StreamResponse`` puts each event on the wire as it is written (chunked transfer
encoding, no buffering), it speaks proper HTTP/1.1 (keep-alive, chunked, HEAD, Range), and the same library
provides the client used for replyUrl callbacks. The standard library's ``http.server`` is one thread per
connection and HTTP/1.0-minded; WSGI servers buffer or tie a worker to each stream.

Endpoints
---------
Under ``/v1/minimax`` (``Authorization: Bearer <token>`` required, else 401 ``{"error": "Unauthorized"}``):

* ``POST videos/agent-create`` - body as JSON, multipart/form-data or x-www-form-urlencoded. 200 with an
  event stream, or before the stream: 400 ``{"error", "code": 400}`` naming the field (templateId missing;
  ossPath without fileID or fileID without ossPath; replyUrl/replyRef > 1024 chars; prompt > 2000 chars;
  maxJobs not an integer 1..10; account not configured (a 400, our choice); a prompt to a template that takes
  no text; no prompt for a template that requires one; no image for a template that needs one; an image for
  a template that takes none (GUESS); an unknown fileID or one owned by another account), 404 unknown
  template (``{"error": "The video or template you are trying to use does not exist or has been deleted."}``),
  429 capacity (``Retry-After`` header), and the fault-driven 402/412/422/502/504/596.
  Capacity: an account runs at most maxJobs jobs at once (a request's maxJobs overrides the account's for
  that request); without ``account`` the simulator picks one at random among those with free capacity, or
  the owner of ``fileID``. The slot is held until the job is final, even if the client disconnects.
* ``GET videos/{videoId}`` - status JSON (0 pending, 11 queued, 1 and 12 processing, 2 completed, 3 failed,
  5/7/14 moderated; ``percent`` moves during generation). 404 ``{"error": "Not found."}`` for unknown ids and
  for moderated videos once ``moderated_visible_seconds`` have passed.
* ``GET videos/agent-templates`` (``limit`` 1..100 default 30, ``lastId``, ``hasNext``) and
  ``GET videos/agent-templates?templateId=...`` (detail; its field names are a GUESS).
* ``POST files`` (raw PNG/JPEG body, ``?account=``, default the first account; 400 bad type or bytes, 413 over
  ``max_upload_bytes``) and ``GET files``.
* ``GET accounts``, ``GET accounts/{account}`` (404 unknown), ``GET scheduler/available``.

The CDN (no auth) under ``/cdn/``: ``video/<id>.mp4`` (watermarked), ``video/<id>_nowm.mp4`` (no watermark),
``video/<id>.png`` (poster), ``files/<account>/<id>.png|jpg`` (uploads), ``templates/<templateId>.mp4|png``.
Videos support ``Range`` (206/416), HEAD and ETag, and are streamed in 1 MiB chunks with bounded memory.

Simulator-only, no auth (never part of the real API): ``GET /_sim/counters``, ``POST /_sim/reset``,
``GET|POST /_sim/faults`` (a JSON list of fault specs), ``GET|POST /_sim/config`` (a JSON object of runtime
fields to change, e.g. ``{"generation_seconds": 2}``).

replyUrl: when a job becomes final (completed, failed or moderated) the simulator POSTs the GET videos/{id}
JSON plus ``replyRef`` to it once (no retries, not signed); failures are only counted.

Stream events
-------------
Events are ``data: <json>\\n\\n``. Numbered as the faults count them (heartbeats are NOT counted; they are
sent every ``heartbeat_seconds`` during generation)::

    1 created   2 connected   3 progress type 1 "Generating image..."   4 type 2 image status 2
    5 type 2 image status 3 (poster PNG)   6 type 1 "Generating video..."   7 type 2 attachmentInfo type 3 status 2
    8 type 2 final video status 3          9 type 3 isFinished + recTemplateList   10 finished
    with fail/moderate: 8 type 3 isFinished + errCode/errMsg, 9 finished + errCode/errMsg

Faults (FAULTS.md)
------------------
Choose them server-wide (``SimulatorConfig.faults``, ``sim.set_faults([...])``, ``POST /_sim/faults``,
``--fault``), per request with the header ``X-Sim-Fault: name[=arg][,name2[=arg]]``, or with a marker inside the
prompt text ``[sim:name=arg,name2]`` (the marker stays in the prompt, so it works through any client; a
prompt made only of markers counts as "no text" for templates that take none). Precedence when a name is
given twice: prompt > header > server-wide. Faults are remembered on the job, so CDN faults apply to that
job's downloads. A bad fault spec is a 400 ("Simulator fault syntax: ...").

=====================  ==================================================================================
``drop_after=K``       close the stream connection abruptly after event K (chunked body not terminated);
                       the job continues server-side and GET videos/{id} recovers it. K=0: before any event.
``stall_after=K``      after event K send nothing more (no heartbeats either); the socket stays open until
                       the client leaves; the job continues server-side.
``malformed_at=K``     event K is sent as invalid JSON (cut in half); the stream then continues normally.
``fail``               the video fails: GET shows status 3 with a message; events 8-9 carry errCode/errMsg.
``moderate[=5|7|14]``  moderated outcome (default 7); GET shows that status for
                       ``moderated_visible_seconds`` (default 2 s), then 404 "Not found.".
``busy[=N]``           the first N creates carrying this fault get 429 (+ Retry-After), later ones pass.
``http502[=N]``        likewise with 502 ``{"error": ...}``.
``http504[=N]``        likewise with 504 ``{"error": ...}``.
``credits``            every create gets 412 (out of credits).
``hold``               every create gets 596 (account on hold for hours).
``expired``            every create gets 402 (subscription expired).
``moderated_prompt``   every create gets 422 (prompt refused by moderation).
``cdn_cut=BYTES[:N]``  the CDN closes the connection after BYTES body bytes of a video response although
                       Content-Length announced more; only the first N responses (default 1; N=0: all)
                       of that job's videos are cut, so a resuming (Range) or retrying client recovers.
``cdn_slow=BPS``       throttle this job's video downloads to BPS bytes per second.
``no_finished``        the stream ends cleanly after the type-3 event, without ``finished``
                       (the job completes server-side).
``slow=SECONDS``       this job's generation takes SECONDS instead of ``generation_seconds``.
=====================  ==================================================================================

busy/http502/http504 are counted server-wide per fault instance: the key is its source (prompt, header or
server-wide) and its text, plus the whole prompt for prompt markers (so ``[sim:busy=2]`` in two different
prompts counts separately). ``reset()`` and ``set_faults()`` restart the counts.

Counters
--------
``sim.counters()`` / ``GET /_sim/counters``: ``creates``, ``creates_by_account``, ``creates_by_prompt``,
``create_requests`` (every POST agent-create, rejected ones too), ``rejected_by_status`` (``{"429": n}``),
``polls``, ``polls_by_video``, ``downloads`` (video GETs started), ``downloads_completed``,
``downloads_by_video``, ``range_requests``, ``bytes_served``, ``callbacks`` (attempts),
``callbacks_delivered`` (2xx), ``concurrent_jobs_by_account``, ``max_concurrent_by_account``,
``concurrent_total``, ``max_concurrent_total``, ``uploads``, ``jobs_by_outcome``.

Guesses
-------
Everything the public documentation does not state is marked GUESS in the code: the template detail field
names, the invented templates (all but "Diving" and "Run for Life"), how a failed/moderated stream ends
(errCode/errMsg values), the ``extra.url``/``vendor`` values, the 10 MB upload limit and 413, the 400 for an
unknown account or lastId, the formats in scheduler/available, the like/author blocks of agent-templates and
the moderated-video visibility delay.
"""

from .config import SimulatorConfig
from .faults import Fault
from .server import MiniMaxSimulator

__all__ = ["Fault", "MiniMaxSimulator", "SimulatorConfig"]
