"""Seed 000's DSL for reading a thread's logs and preprocessed data: parsing and resolving.

    {"data": {"user_id": "u1", "thread_id": "t1"},
     "input": [{"attribute": "log/log", "filter": "all"}, {"attribute": "log/image", "filter": "latest"}],
     "output": "latest-log/prompt-json"}

Attributes: `log/log` (the thread's log.csv rows; the user's threads without a thread_id),
`log/image` (the thread's images), `preprocess/<task>` (results of a preprocess extension).
Filters: `all`, `latest` (the newest row, the newest prompt's images, the newest result) and
`unprocessed` (images that the per-image extension has not processed yet). `POST /fetch/log` and
`POST /extensions/preprocess` share this parser; the workers share the resolver.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from shared.extensions import EXTENSIONS, PER_IMAGE
from shared.schemas import ID_PATTERN, RESERVED_ID
from shared.threadlog import read_csv, thread_folder, thread_log_key, user_log_key

FILTERS = ("all", "latest", "unprocessed")
LOG_ATTRIBUTES = ("log/log", "log/image")
# The answer of /fetch/log is JSON; the seed's example names it latest-log/prompt-json.
FETCH_OUTPUTS = ("latest-log/prompt-json", "json")
MAX_INPUTS = 16


class DslError(ValueError):
    def __init__(self, fields: dict[str, str]):
        super().__init__("; ".join(f"{name}: {problem}" for name, problem in fields.items()))
        self.fields = fields


@dataclass(frozen=True)
class Input:
    attribute: str
    filter: str


@dataclass(frozen=True)
class Query:
    user_id: str
    thread_id: str | None
    inputs: tuple[Input, ...]
    output: str
    task: str | None = None


def attributes() -> list[str]:
    return list(LOG_ATTRIBUTES) + [f"preprocess/{task}" for task in EXTENSIONS]


def _identifier(value, name: str, problems: dict) -> str | None:
    """An id as the templates accept it; the seed's examples also use numbers (0), taken as text."""
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        value = str(value)
    if not isinstance(value, str) or not ID_PATTERN.match(value):
        problems[name] = "must be 1 to 64 characters of A-Z, a-z, 0-9, '_' or '-' (or a whole number)"
        return None
    if value == RESERVED_ID:
        problems[name] = f"'{RESERVED_ID}' is reserved for jobs logged without a user and thread"
        return None
    return value


def _inputs(raw, problems: dict, defaults: dict[str, str] | None = None) -> tuple[Input, ...]:
    if not isinstance(raw, list) or not raw:
        problems["input"] = "must be a non-empty list of {attribute, filter} objects"
        return ()
    if len(raw) > MAX_INPUTS:
        problems["input"] = f"at most {MAX_INPUTS} inputs"
        return ()
    known = attributes()
    out = []
    for index, item in enumerate(raw):
        where = f"input[{index}]"
        if not isinstance(item, dict):
            problems[where] = "must be an object with attribute and filter"
            continue
        extra = set(item) - {"attribute", "filter"}
        if extra:
            problems[where] = f"unknown key(s): {', '.join(sorted(extra))}"
            continue
        attribute = item.get("attribute")
        if attribute not in known:
            problems[f"{where}.attribute"] = f"must be one of {', '.join(known)}"
            continue
        default = (defaults or {}).get(attribute, "all")
        chosen = item.get("filter", default)
        if chosen not in FILTERS:
            problems[f"{where}.filter"] = f"must be one of {', '.join(FILTERS)}"
            continue
        if chosen == "unprocessed" and attribute != "log/image":
            problems[f"{where}.filter"] = "'unprocessed' applies to log/image only"
            continue
        out.append(Input(attribute, chosen))
    return tuple(out)


def _data(raw, problems: dict, need_thread: bool) -> tuple[str | None, str | None]:
    if not isinstance(raw, dict):
        problems["data"] = "must be an object with user_id and thread_id"
        return None, None
    extra = set(raw) - {"user_id", "thread_id", "object"}
    if extra:
        problems["data"] = f"unknown key(s): {', '.join(sorted(extra))}"
    if raw.get("object", "thread") != "thread":
        problems["data.object"] = "only 'thread' is supported"
    user = _identifier(raw.get("user_id"), "data.user_id", problems)
    thread = _identifier(raw.get("thread_id"), "data.thread_id", problems)
    if user is None and "data.user_id" not in problems:
        problems["data.user_id"] = "is required"
    if need_thread and thread is None and "data.thread_id" not in problems:
        problems["data.thread_id"] = "is required"
    return user, thread


def parse_fetch(body) -> Query:
    """The body of POST /fetch/log: {"dsl": {data, input, output}}."""
    if not isinstance(body, dict) or not isinstance(body.get("dsl"), dict):
        raise DslError({"dsl": 'the body must be {"dsl": {"data": ..., "input": [...], "output": ...}}'})
    dsl = body["dsl"]
    problems: dict[str, str] = {}
    if set(body) - {"dsl", "api_key"}:
        problems["body"] = f"unknown key(s): {', '.join(sorted(set(body) - {'dsl', 'api_key'}))}"
    extra = set(dsl) - {"data", "input", "output"}
    if extra:
        problems["dsl"] = f"unknown key(s): {', '.join(sorted(extra))}"
    user, thread = _data(dsl.get("data"), problems, need_thread=False)
    inputs = _inputs(dsl.get("input"), problems)
    output = dsl.get("output", "json")
    if output not in FETCH_OUTPUTS:
        problems["output"] = f"must be one of {', '.join(FETCH_OUTPUTS)} (the answer is JSON)"
    if thread is None and "data.thread_id" not in problems:
        for item in inputs:
            if item.attribute != "log/log":
                problems["data.thread_id"] = f"is required for {item.attribute}"
                break
    if problems:
        raise DslError(problems)
    return Query(user, thread, inputs, output)


def parse_preprocess(body) -> Query:
    """The body of POST /extensions/preprocess (seed 000's extension DSL)."""
    if not isinstance(body, dict):
        raise DslError({"body": "must be a JSON object"})
    problems: dict[str, str] = {}
    extra = set(body) - {"extension_name", "task", "url", "data", "input", "output", "api_key"}
    if extra:
        problems["body"] = f"unknown key(s): {', '.join(sorted(extra))}"
    if body.get("extension_name", "preprocess") != "preprocess":
        problems["extension_name"] = "must be 'preprocess'"
    if body.get("url") not in (None, ""):
        problems["url"] = "remote extensions are not supported; leave url empty"
    task = body.get("task")
    extension = EXTENSIONS.get(task) if isinstance(task, str) else None
    if extension is None:
        problems["task"] = f"must be one of {', '.join(EXTENSIONS)}"
    user, thread = _data(body.get("data"), problems, need_thread=True)
    raw_inputs = body.get("input")
    if raw_inputs is None and extension is not None:
        raw_inputs = [{"attribute": a, "filter": f} for a, f in extension.inputs.items()]
    inputs = () if raw_inputs is None else _inputs(raw_inputs, problems, extension.inputs if extension else None)
    output = body.get("output")
    if extension is not None:
        for item in inputs:
            if item.attribute not in extension.inputs:
                problems["input"] = f"{extension.task} reads {', '.join(extension.inputs)}, not {item.attribute}"
        for needed in extension.required:
            if inputs and needed not in {item.attribute for item in inputs}:
                problems["input"] = f"{extension.task} needs the input {needed}"
        if output is None:
            output = extension.output
        elif output != extension.output:
            problems["output"] = f"{extension.task} writes '{extension.output}'"
    if problems:
        raise DslError(problems)
    return Query(user, thread, inputs, output, extension.task)


# -- resolving -------------------------------------------------------------------------------


def processed_folder(user: str, thread: str, task: str) -> str:
    return f"{thread_folder(user, thread)}/processed/{task}"


class ThreadData:
    """What the DSL can read from one user's thread in storage."""

    def __init__(self, storage, user: str, thread: str | None):
        self.storage = storage
        self.user = user
        self.thread = thread
        # The log is read once per request (it is not written while one is answered).
        self._rows: list[dict] | None = None

    def exists(self) -> bool:
        return bool(self.rows())

    def rows(self) -> list[dict]:
        if self._rows is None:
            self._rows = self._read_rows()
        return self._rows

    def _read_rows(self) -> list[dict]:
        if self.thread is None:
            return read_csv(self.storage, user_log_key(self.user))
        rows = read_csv(self.storage, thread_log_key(self.user, self.thread))
        for row in rows:
            row["output_filenames"] = json.loads(row.get("output_filenames") or "[]")
            row["ratings"] = json.loads(row.get("ratings") or "[]")
        return rows

    def images(self, rows: list[dict] | None = None) -> list[dict]:
        folder = f"{thread_folder(self.user, self.thread)}/data"
        out = []
        for row in self.rows() if rows is None else rows:
            for name in row["output_filenames"]:
                if "-grid." in name:
                    continue
                out.append({"prompt_id": row["prompt_id"], "filename": name, "key": f"{folder}/{name}"})
        return out

    def results(self, task: str) -> list[dict]:
        found = []
        for key in self.storage.list(processed_folder(self.user, self.thread, task)):
            try:
                found.append(json.loads(self.storage.get(key)))
            except KeyError:
                continue
        return sorted(found, key=lambda result: (result.get("created_at", 0), result.get("key", "")))

    def select(self, item: Input, per_image_task: str | None = None) -> list[dict]:
        """The records `item` names, oldest first."""
        if item.attribute == "log/log":
            rows = self.rows()
            return rows[-1:] if item.filter == "latest" else rows
        if item.attribute == "log/image":
            rows = self.rows()
            images = self.images(rows[-1:] if item.filter == "latest" else rows)
            if item.filter == "unprocessed":
                task = per_image_task or next(t for t, e in EXTENSIONS.items() if e.output == PER_IMAGE)
                done = {result.get("image") for result in self.results(task)}
                images = [image for image in images if image["filename"] not in done]
            return images
        results = self.results(item.attribute.removeprefix("preprocess/"))
        return results[-1:] if item.filter == "latest" else results
