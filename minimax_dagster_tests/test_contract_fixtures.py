"""The documentation's example responses (fixtures/) against the simulator and against the client's models.

1. The simulator's answer on each documented endpoint has the keys and JSON types of the documented example
   (a recursive shape comparison): a documented key the simulator lacks fails, a different JSON type fails, and
   a key the documentation does not show fails unless it is labelled below with the reason it may be there.
   Every documented path must be compared at least once, so an empty simulator answer cannot pass.
2. Each fixture parses with the models of ``minimax_dagster.api.models``, gives back the documented values
   unchanged (``to_wire``-style dump == the fixture) and declares the fields the client relies on.

fixtures/index.json names the page each fixture comes from.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
from pydantic import TypeAdapter

from minimax_dagster.api import models
from minimax_dagster.simulator import MiniMaxSimulator

from .test_simulator import IMAGE_ONLY, PNG, TEXT, auth, read_events, wait_final

FIXTURES = Path(__file__).parent / "fixtures"
INDEX: dict[str, Any] = json.loads((FIXTURES / "index.json").read_text(encoding="utf-8"))


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


# ---- the shape comparison -----------------------------------------------------------------------------------


def json_type(value: Any) -> str:
    """The JSON type of a parsed value (JSON has one number type).

    >>> [json_type(v) for v in (None, True, 1, 1.5, "", [], {})]
    ['null', 'boolean', 'number', 'number', 'string', 'array', 'object']
    """
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    raise TypeError(f"not a JSON value: {value!r}")


def merged(items: list[Any]) -> Any:
    """One documented shape for the items of an array: objects are united key by key (the documentation's
    items may each show some optional keys: GET videos/' first item has message, its second downloadURL).

    >>> merged([{"a": 1, "o": {"x": 1}}, {"b": "s", "o": {"y": 2}}])
    {'a': 1, 'o': {'x': 1, 'y': 2}, 'b': 's'}
    """
    if not all(isinstance(item, dict) for item in items):
        return items[0]
    out: dict[str, Any] = {}
    for item in items:
        for key, value in item.items():
            if key not in out:
                out[key] = value
            elif isinstance(value, dict) and isinstance(out[key], dict):
                out[key] = merged([out[key], value])
            elif isinstance(value, list) and isinstance(out[key], list):
                out[key] = out[key] + value
    return out


@dataclass
class ShapeCheck:
    """Compare a simulator answer with a documented example; :attr:`problems` lists every difference.

    ``extras`` maps a path (``$.a[].b``, ``$.*.c`` under a map) or ``**.key`` (any depth) to the label that
    says why the simulator may send a key the example lacks. ``maps`` are object paths whose keys are ids.

    >>> check = ShapeCheck(extras={"$.hasNext": "2nd"})
    >>> check.compare({"videoList": [{"id": "1", "n": 1}]}, {"videoList": [{"id": "2", "n": "x"}], "hasNext": True})
    >>> check.problems
    ['$.videoList[].n: documented number, simulator string']
    >>> check = ShapeCheck()
    >>> check.compare({"a": 1, "b": [{"c": 1}]}, {"b": [], "z": 0})
    >>> check.problems
    ['$.a: documented key missing', '$.z: not documented and not labelled', '$.b[]: never compared (empty)']
    """

    extras: dict[str, str] = field(default_factory=dict)
    maps: frozenset[str] = frozenset()
    problems: list[str] = field(default_factory=list)
    compared: set[str] = field(default_factory=set)

    def compare(self, doc: Any, actual: Any, path: str = "$", *, top: bool = True) -> None:
        self.compared.add(path)
        doc_type, actual_type = json_type(doc), json_type(actual)
        if doc_type != actual_type:
            self.problems.append(f"{path}: documented {doc_type}, simulator {actual_type}")
        elif doc_type == "object" and path in self.maps:
            for value in actual.values():
                self.compare(merged(list(doc.values())), value, f"{path}.*", top=False)
        elif doc_type == "object":
            for key, value in doc.items():
                if key in actual:
                    self.compare(value, actual[key], f"{path}.{key}", top=False)
                else:
                    self.problems.append(f"{path}.{key}: documented key missing")
            for key in actual.keys() - doc.keys():
                if f"{path}.{key}" not in self.extras and f"**.{key}" not in self.extras:
                    self.problems.append(f"{path}.{key}: not documented and not labelled")
        elif doc_type == "array" and doc:
            for item in actual:
                self.compare(merged(doc), item, f"{path}[]", top=False)
        if top:
            reported = {p.split(":")[0] for p in self.problems}
            missed = self._paths(doc, path) - self.compared - reported
            for gap in sorted(missed):
                if not any(gap.startswith(other) and gap != other for other in missed):  # the shallowest only
                    self.problems.append(f"{gap}: never compared (empty)")

    def _paths(self, doc: Any, path: str) -> set[str]:
        paths = {path}
        if isinstance(doc, dict) and path in self.maps:
            paths |= self._paths(merged(list(doc.values())), f"{path}.*")
        elif isinstance(doc, dict):
            for key, value in doc.items():
                paths |= self._paths(value, f"{path}.{key}")
        elif isinstance(doc, list) and doc:
            paths |= self._paths(merged(doc), f"{path}[]")
        return paths


def assert_same_shape(doc: Any, actual: Any, **kwargs: Any) -> None:
    check = ShapeCheck(**kwargs)
    check.compare(doc, actual)
    assert not check.problems, "\n".join(check.problems)


def test_the_comparison_fails_on_every_kind_of_drift():
    doc = fixture("get_videos_videoId.json")
    for drift, expected in [
        ({k: v for k, v in doc.items() if k != "statusFinal"}, "$.statusFinal: documented key missing"),
        ({**doc, "percent": "100"}, "$.percent: documented number, simulator string"),
        (
            {**doc, "originFiles": [{"id": 1, "url": "u", "type": "png"}]},
            "$.originFiles[].id: documented string",
        ),
        ({**doc, "originFiles": []}, "$.originFiles[]: never compared"),
        ({**doc, "brandNew": 1}, "$.brandNew: not documented and not labelled"),
    ]:
        check = ShapeCheck()
        check.compare(doc, drift)
        assert any(p.startswith(expected) for p in check.problems), (expected, check.problems)
    assert_same_shape(doc, json.loads(json.dumps(doc)))


# ---- the simulator's answers --------------------------------------------------------------------------------


@dataclass
class World:
    """One simulator with something to show on every endpoint: a completed video made from an uploaded
    image, a running job with replyUrl/replyRef, an account in error."""

    sim: MiniMaxSimulator
    completed: str  # videoId
    running: str  # videoId
    stream: list[dict[str, Any]]

    def get(self, path: str, **params: Any) -> requests.Response:
        return requests.get(f"{self.sim.base_url}/{path}", headers=auth(self.sim), params=params, timeout=10)

    def ok(self, path: str, **params: Any) -> Any:
        resp = self.get(path, **params)
        assert resp.status_code == 200, resp.text
        return resp.json()


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    with MiniMaxSimulator(
        accounts={"100001": 3, "100002": 3, "100003": 1},
        accounts_in_error={"100003": "Account on hold"},
        generation_seconds=0.4,
        heartbeat_seconds=0.05,
    ) as sim:
        h = auth(sim)
        up = requests.post(
            f"{sim.base_url}/files",
            params={"account": "100001"},
            headers={**h, "Content-Type": "image/png"},
            data=PNG,
            timeout=10,
        ).json()
        body = {"templateId": IMAGE_ONLY, "fileID": up["fileID"], "ossPath": up["ossPath"]}
        made = read_events(
            requests.post(
                f"{sim.base_url}/videos/agent-create", headers=h, json=body, stream=True, timeout=30
            )
        )
        stream = read_events(
            requests.post(
                f"{sim.base_url}/videos/agent-create",
                headers=h,
                json={"templateId": TEXT, "prompt": "Futuristic sports car", "account": "100002"},
                stream=True,
                timeout=30,
            )
        )
        completed = made[0]["videoId"]
        wait_final(sim, completed)
        running_body = {
            "templateId": TEXT,
            "prompt": "still running [sim:slow=60]",
            "account": "100001",
            "replyUrl": "http://127.0.0.1:9/hook",
            "replyRef": "ref-1",
        }
        resp = requests.post(
            f"{sim.base_url}/videos/agent-create", headers=h, json=running_body, stream=True, timeout=30
        )
        running = json.loads(next(resp.iter_lines(decode_unicode=True))[5:])["videoId"]
        resp.close()
        yield World(sim, completed, running, stream)


ACCOUNT_EXTRAS = {
    "supportMusic": "doc: the page's Model lists supportMusic (boolean); the older revision's example shows it",
    "host": "2nd: api-notes and useapi.net's MCP tool description list host beside maxJobs",
}


@dataclass(frozen=True)
class Contract:
    fixture: str
    answer: Callable[[World], Any]
    extras: dict[str, str] = field(default_factory=dict)
    maps: frozenset[str] = frozenset()


def _videos_and_status(world: World) -> Any:
    return world.ok("videos/", account="100001")


CONTRACTS = [
    Contract(
        "get_accounts.json",
        lambda w: {a: v for a, v in w.ok("accounts").items() if "error" not in v},
        extras={f"$.*.{k}": why for k, why in ACCOUNT_EXTRAS.items()},
        maps=frozenset({"$"}),
    ),
    Contract(
        "get_accounts_account.json",
        lambda w: w.ok("accounts/100001"),
        extras={f"$.{k}": why for k, why in ACCOUNT_EXTRAS.items()},
    ),
    Contract(
        "get_accounts_account_in_error.json",
        lambda w: w.ok("accounts/100003"),
        extras={f"$.{k}": why for k, why in ACCOUNT_EXTRAS.items()},
    ),
    Contract("get_scheduler_available.json", lambda w: w.ok("scheduler/available")),
    Contract(
        "get_videos.json",
        _videos_and_status,
        extras={
            "$[].percent": "doc: items carry the GET videos/{videoId} fields, percent among them (api-notes)"
        },
    ),
    Contract(
        "get_videos_videoId.json",
        lambda w: w.ok(f"videos/{w.completed}"),
        extras={"$.message": "doc: the page's Model lists message (string)"},
    ),
    Contract(
        "get_videos_videoId_404.json", lambda w: w.get("videos/user:1234-minimax:100001-video:1").json()
    ),
    Contract(
        "get_videos_agent_templates.json",
        lambda w: w.ok("videos/agent-templates", account="100001"),
        extras={"$.hasNext": "2nd/GUESS: useapi.net's MCP tool description pages 'while hasNext is true'"},
    ),
    Contract("get_files.json", lambda w: w.ok("files", account="100001")),
    Contract(
        "post_files.json",
        lambda w: requests.post(
            f"{w.sim.base_url}/files",
            params={"account": "100002"},
            headers={**auth(w.sim), "Content-Type": "image/png"},
            data=PNG,
            timeout=10,
        ).json(),
    ),
    Contract("error_400.json", lambda w: w.get("files").json()),  # no account with several accounts
    Contract("error_401.json", lambda w: requests.get(f"{w.sim.base_url}/videos/", timeout=10).json()),
    Contract(
        "post_videos_agent_create_400.json",
        lambda w: requests.post(
            f"{w.sim.base_url}/videos/agent-create", headers=auth(w.sim), json={"prompt": "x"}, timeout=10
        ).json(),
    ),
    Contract(
        "post_videos_agent_create_401.json",
        lambda w: requests.post(f"{w.sim.base_url}/videos/agent-create", json={}, timeout=10).json(),
    ),
    Contract(
        "post_videos_agent_create_404.json",
        lambda w: requests.post(
            f"{w.sim.base_url}/videos/agent-create",
            headers=auth(w.sim),
            json={"templateId": "404"},
            timeout=10,
        ).json(),
    ),
]


def test_every_fixture_has_a_source_and_a_contract():
    names = {p.name for p in FIXTURES.glob("*.json")} - {"index.json"}
    assert names == {k for k in INDEX if not k.startswith("_")}
    for name in names:
        assert INDEX[name]["sources"] and INDEX[name]["origin"] in ("doc", "api-notes"), name
    covered = {c.fixture for c in CONTRACTS} | {"post_videos_agent_create_stream.json"}
    assert covered == names


@pytest.mark.parametrize("contract", CONTRACTS, ids=lambda c: c.fixture)
def test_the_simulator_answers_in_the_documented_shape(world, contract):
    assert_same_shape(
        fixture(contract.fixture), contract.answer(world), extras=contract.extras, maps=contract.maps
    )


#: doc: the field names of the seed page's "JSON Data Model" (every field optional): an event may carry them.
STREAM_MODEL_KEYS = [
    "status",
    "videoId",
    "timestamp",
    "projectID",
    "sectionID",
    "chatID",
    "code",
    "type",
    "needUserInput",
    "isFinished",
    "errCode",
    "errMsg",
    "message",
    "msgId",
    "parentMsgId",
    "msgType",
    "isQuota",
    "msgContent",
    "files",
    "fileName",
    "fileUrl",
    "posterUrl",
    "extra",
    "toolCall",
    "toolName",
    "toolCallStatus",
    "toolCallArgs",
    "attachmentInfo",
    "attachmentInfoID",
    "attachments",
    "attachmentID",
    "file",
    "text",
    "subAttachments",
    "createTime",
    "attachmentInfoUrl",
    "height",
    "width",
    "url",
    "path",
    "no_watermark_url",
    "watermark_url",
    "duration",
    "fps",
    "frames",
    "task_id",
    "vendor",
]


def test_the_simulator_streams_the_documented_events(world):
    doc = fixture("post_videos_agent_create_stream.json")
    extras = {f"**.{key}": "doc: the seed page's JSON Data Model" for key in STREAM_MODEL_KEYS}
    doc_main = [e for e in doc if e["status"] != "heartbeat"]
    sim_main = [e for e in world.stream if e["status"] != "heartbeat"]
    assert [(e["status"], e.get("type")) for e in sim_main] == [
        (e["status"], e.get("type")) for e in doc_main
    ]
    for documented, sent in zip(doc_main, sim_main, strict=True):
        assert_same_shape(documented, sent, extras=extras)
    beats = [e for e in world.stream if e["status"] == "heartbeat"]
    assert beats, "no heartbeat was sent"
    for beat in beats:
        assert_same_shape(next(e for e in doc if e["status"] == "heartbeat"), beat)


# ---- the client's models --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelFit:
    fixture: str
    adapter: Callable[[], TypeAdapter]
    declared: tuple[tuple[type, str], ...] = ()  # fields the client relies on: (model, field name)


def _fits(case: ModelFit) -> None:
    doc = fixture(case.fixture)
    adapter = case.adapter()
    parsed = adapter.validate_python(doc)
    again = adapter.dump_python(parsed, mode="json", by_alias=True, exclude_none=True)
    changed = value_changes(doc, again)
    assert not changed, "the model changes documented values: " + "; ".join(changed)
    missing = [f"{model.__name__}.{name}" for model, name in case.declared if name not in model.model_fields]
    assert not missing, f"fields the client relies on are not declared: {missing}"


def value_changes(doc: Any, again: Any, path: str = "$") -> list[str]:
    """Where ``again`` (a model's dump) differs from the documented value, kind for kind (1 and 1.0 are equal,
    1 and "1" are not).

    >>> value_changes({"a": 1, "b": [1], "c": "x"}, {"a": "1", "b": [1.0], "d": 2})
    ["$.a: 1 became '1'", '$.c: lost', '$.d: added 2']
    """
    if isinstance(doc, dict) and isinstance(again, dict):
        out = []
        for key in doc:
            out += (
                value_changes(doc[key], again[key], f"{path}.{key}")
                if key in again
                else [f"{path}.{key}: lost"]
            )
        out += [f"{path}.{key}: added {again[key]!r}" for key in again if key not in doc]
        return out
    if isinstance(doc, list) and isinstance(again, list) and len(doc) == len(again):
        return [
            c
            for i, (d, a) in enumerate(zip(doc, again, strict=True))
            for c in value_changes(d, a, f"{path}[{i}]")
        ]
    if json_type(doc) != json_type(again) or doc != again:
        return [f"{path}: {doc!r} became {again!r}"]
    return []


MODEL_FITS = [
    pytest.param(
        ModelFit(
            "get_videos_videoId.json",
            lambda: TypeAdapter(models.VideoStatus),
            (
                (models.VideoStatus, "video_id"),
                (models.VideoStatus, "status_final"),
                (models.VideoStatus, "desc"),
            ),
        ),
        id="get_videos_videoId.json",
    ),
    pytest.param(
        ModelFit(
            "get_videos.json", lambda: TypeAdapter(list[models.VideoStatus]), ((models.VideoStatus, "desc"),)
        ),
        id="get_videos.json",
    ),
    pytest.param(ModelFit("get_videos_videoId_404.json", lambda: TypeAdapter(models.ApiError)), id="404"),
    pytest.param(ModelFit("error_400.json", lambda: TypeAdapter(models.ApiError)), id="error_400.json"),
    pytest.param(ModelFit("error_401.json", lambda: TypeAdapter(models.ApiError)), id="error_401.json"),
    pytest.param(
        ModelFit("post_videos_agent_create_400.json", lambda: TypeAdapter(models.ApiError)), id="create_400"
    ),
    pytest.param(
        ModelFit("post_videos_agent_create_401.json", lambda: TypeAdapter(models.ApiError)), id="create_401"
    ),
    pytest.param(
        ModelFit("post_videos_agent_create_404.json", lambda: TypeAdapter(models.ApiError)), id="create_404"
    ),
    pytest.param(
        ModelFit("post_videos_agent_create_stream.json", lambda: TypeAdapter(list[models.StreamEvent])),
        id="post_videos_agent_create_stream.json",
    ),
    pytest.param(ModelFit("post_files.json", lambda: TypeAdapter(models.UploadedFile)), id="post_files.json"),
    pytest.param(
        ModelFit(
            "get_videos_agent_templates.json",
            lambda: TypeAdapter(models.TemplateList),
            ((models.TemplateAsset, "resolution"), (models.TemplateAsset, "tags")),
        ),
        id="get_videos_agent_templates.json",
    ),
    pytest.param(
        ModelFit(
            "get_scheduler_available.json",
            lambda: TypeAdapter(models.SchedulerAvailable),
            (
                (models.ExecutingJob, "started"),
                (models.ExecutingJob, "elapsed"),
                (models.ExecutingJob, "image_id"),
            ),
        ),
        id="get_scheduler_available.json",
    ),
    pytest.param(
        ModelFit(
            "get_files.json",
            lambda: TypeAdapter(list[models.FileInfo]),
            ((models.FileInfo, "file_id"), (models.FileInfo, "oss_path")),
        ),
        id="get_files.json",
    ),
    pytest.param(
        ModelFit(
            "get_accounts.json",
            lambda: TypeAdapter(dict[str, models.Account]),
            ((models.Account, "support_video"), (models.Account, "error")),
        ),
        id="get_accounts.json",
    ),
    pytest.param(
        ModelFit(
            "get_accounts_account.json",
            lambda: TypeAdapter(models.Account),
            ((models.Account, "support_video"), (models.Account, "error")),
        ),
        id="get_accounts_account.json",
    ),
    pytest.param(
        ModelFit(
            "get_accounts_account_in_error.json",
            lambda: TypeAdapter(models.Account),
            ((models.Account, "support_video"), (models.Account, "error")),
        ),
        id="get_accounts_account_in_error.json",
    ),
]


@pytest.mark.parametrize("case", MODEL_FITS)
def test_the_models_fit_the_documented_examples(case):
    _fits(case)


def test_every_fixture_is_parsed_by_a_model():
    names = {p.name for p in FIXTURES.glob("*.json")} - {"index.json"}
    assert {p.values[0].fixture for p in MODEL_FITS} == names
