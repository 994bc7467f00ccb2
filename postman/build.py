"""Build the Postman collection and environment from the request templates.

.venv/bin/python postman/build.py          # rewrite postman/*.json
.venv/bin/python postman/build.py --check  # exit 1 when the committed files are stale
"""

from __future__ import annotations

import base64
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from shared.templates import load_templates  # noqa: E402

COLLECTION = ROOT / "postman" / "diffq.postman_collection.json"
ENVIRONMENT = ROOT / "postman" / "diffq.postman_environment.json"
# Fast values for the built-in tiny model; every other field keeps its template default.
FAST = {"prompt": "a red scaley ((dragon)) playing a guitar", "width": 64, "height": 64, "steps": 4, "seed": 42}
SEED_IMAGE = ROOT / "tests" / "data" / "seed001-24x24.png"


def script(*lines: str) -> list[dict]:
    return [{"listen": "test", "script": {"type": "text/javascript", "exec": list(lines)}}]


def request(name: str, method: str, path: str, tests: list[dict], body: dict | None = None, auth: bool = True) -> dict:
    raw_path = path.lstrip("/")
    url = {"raw": "{{baseUrl}}/" + raw_path, "host": ["{{baseUrl}}"]}
    path_part, _, query = raw_path.partition("?")
    url["path"] = path_part.split("/")
    if query:
        url["query"] = [{"key": k, "value": v} for k, v in (pair.split("=") for pair in query.split("&"))]
    item = {"name": name, "event": tests, "request": {"method": method, "url": url, "header": []}}
    if body is not None:
        item["request"]["header"].append({"key": "Content-Type", "value": "application/json"})
        item["request"]["body"] = {"mode": "raw", "raw": json.dumps(body, indent=2)}
    if not auth:
        item["request"]["auth"] = {"type": "noauth"}
    return item


def poll(name: str, variable: str) -> dict:
    """A status request that repeats itself until the job has finished (at most 120 times)."""
    return request(
        name,
        "GET",
        f"/status/{{{{{variable}}}}}?format=json",
        script(
            "pm.test('status is JSON', () => pm.response.to.have.status(200));",
            "const job = pm.response.json();",
            f"const tries = (pm.collectionVariables.get('{variable}_polls') || 0) + 1;",
            f"pm.collectionVariables.set('{variable}_polls', tries);",
            "if (['queued', 'running'].includes(job.state) && tries < 120) {",
            f"  postman.setNextRequest('{name}');  // newman --delay-request spaces the polls",
            "} else {",
            "  pm.test('job succeeded', () => pm.expect(job.state).to.eql('succeeded'));",
            "  pm.test('images have links and seeds', () => {",
            "    pm.expect(job.images.length).to.be.above(0);",
            "    pm.expect(job.images[0]).to.have.property('url');",
            "    pm.expect(job.images[0]).to.have.property('seed');",
            "  });",
            "}",
        ),
    )


def build() -> tuple[dict, dict]:
    templates = load_templates(ROOT / "templates")
    generate_body = {
        **{name: spec.get("default") for name, spec in templates["generate"].fields.items() if name != "api_key"},
        **FAST,
    }
    img2img_body = {
        "prompt": "a watercolor of a dragon",
        "init_img": base64.b64encode(SEED_IMAGE.read_bytes()).decode(),
        "denoising_strength": 0.5,
        "W": 64,
        "H": 64,
        "ddim_steps": 8,
    }
    accepted = (
        "pm.test('accepted', () => pm.response.to.have.status(202));",
        "const body = pm.response.json();",
        "pm.test('has a task id and status url', () => { pm.expect(body.task_id).to.be.a('string');"
        " pm.expect(body.status_url).to.include(body.task_id); });",
    )
    items = [
        request(
            "Health",
            "GET",
            "/health",
            script(
                "pm.test('Redis answers', () => { pm.response.to.have.status(200); pm.expect(pm.response.json().redis).to.eql(true); });"
            ),
            auth=False,
        ),
        request(
            "Models",
            "GET",
            "/models",
            script(
                "pm.test('lists the default model', () => { pm.response.to.have.status(200);"
                " const m = pm.response.json(); pm.expect(m.models.map(x => x.name)).to.include(m.default); });"
            ),
        ),
        request(
            "Samplers",
            "GET",
            "/samplers",
            script(
                "pm.test('lists seed 001 samplers', () => pm.expect(pm.response.json().samplers.map(s => s.key)).to.include('k_euler_a'));"
            ),
        ),
        request(
            "Generate (text to image)",
            "POST",
            "/generate",
            script(
                *accepted,
                "pm.collectionVariables.set('task_id', body.task_id);",
                "pm.collectionVariables.set('task_id_polls', 0);",
            ),
            generate_body,
        ),
        poll("Status (JSON)", "task_id"),
        request(
            "Status (the image itself)",
            "GET",
            "/status/{{task_id}}",
            script(
                "pm.test('answers with a PNG', () => { pm.response.to.have.status(200);"
                " pm.expect(pm.response.headers.get('Content-Type')).to.eql('image/png'); });"
            ),
        ),
        request(
            "Image to image (seed 001 example image)",
            "POST",
            "/img2img",
            script(
                *accepted,
                "pm.collectionVariables.set('img2img_id', body.task_id);",
                "pm.collectionVariables.set('img2img_id_polls', 0);",
            ),
            img2img_body,
        ),
        poll("Status of img2img (JSON)", "img2img_id"),
        request(
            "Server status (seed 002)",
            "GET",
            "/server/status",
            script(
                "pm.test('says is_available', () => pm.expect(pm.response.json().is_available).to.be.a('boolean'));"
            ),
        ),
        request(
            "Generate in a thread (seed 000 logs)",
            "POST",
            "/generate",
            script(
                *accepted,
                "pm.collectionVariables.set('thread_task_id', body.task_id);",
                "pm.collectionVariables.set('thread_task_id_polls', 0);",
            ),
            {**FAST, "user_id": "postman", "thread_id": "demo"},
        ),
        poll("Status of the thread job (JSON)", "thread_task_id"),
        request(
            "Rate the image",
            "POST",
            "/tasks/{{thread_task_id}}/ratings",
            script("pm.test('rated', () => pm.response.to.have.status(201));"),
            {"rating": 5, "image": 0},
        ),
        request(
            "Fetch the thread log (seed 000 DSL)",
            "POST",
            "/fetch/log",
            script(
                "pm.test('log rows and images', () => { pm.response.to.have.status(200);"
                " const r = pm.response.json().results; pm.expect(r['log/log'].length).to.be.above(0);"
                " pm.expect(r['log/image'][0].url).to.include('/images/'); });"
            ),
            {
                "dsl": {
                    "data": {"user_id": "postman", "thread_id": "demo"},
                    "input": [
                        {"attribute": "log/log", "filter": "all"},
                        {"attribute": "log/image", "filter": "latest"},
                    ],
                    "output": "latest-log/prompt-json",
                }
            },
        ),
        request(
            "Preprocess: image encoding",
            "POST",
            "/extensions/preprocess",
            script(*accepted),
            {
                "extension_name": "preprocess",
                "task": "image_encoding",
                "data": {"object": "thread", "user_id": "postman", "thread_id": "demo"},
                "input": [{"attribute": "log/image", "filter": "unprocessed"}],
                "output": "map-log/image",
            },
        ),
        request(
            "Recent images",
            "GET",
            "/recent?limit=5",
            script(
                "pm.test('newest first, with links', () => { pm.response.to.have.status(200);"
                " const r = pm.response.json(); pm.expect(r.images.length).to.be.above(0);"
                " pm.expect(r.images[0].url).to.include('/images/'); });"
            ),
        ),
        request(
            "Error: bad fields are named",
            "POST",
            "/generate",
            script(
                "pm.test('400 naming each field', () => { pm.response.to.have.status(400);"
                " const e = pm.response.json().error; pm.expect(e.code).to.eql('invalid_request');"
                " pm.expect(e.fields).to.have.property('W'); pm.expect(e.fields).to.have.property('prompt'); });"
            ),
            {"prompt": "", "W": 513},
        ),
        request(
            "Error: no key",
            "GET",
            "/recent",
            script(
                "pm.test('401', () => { pm.response.to.have.status(401);"
                " pm.expect(pm.response.json().error.code).to.eql('unauthorized'); });"
            ),
            auth=False,
        ),
        request(
            "Error: unknown task",
            "GET",
            "/status/00000000-0000-4000-8000-000000000000",
            script("pm.test('404', () => pm.response.to.have.status(404));"),
        ),
        request(
            "Cancel a finished job",
            "DELETE",
            "/tasks/{{task_id}}",
            script(
                "pm.test('409: it already finished', () => { pm.response.to.have.status(409);"
                " pm.expect(pm.response.json().error.code).to.eql('not_cancelable'); });"
            ),
        ),
    ]
    collection = {
        "info": {
            "name": "diffq",
            "description": "Every endpoint of the diffq API, built from templates/ by "
            "postman/build.py. Set baseUrl and apiKey in the environment.",
            "schema": "https://schema.getpostman.com/json/collection/v2.1.0/collection.json",
        },
        "auth": {"type": "bearer", "bearer": [{"key": "token", "value": "{{apiKey}}", "type": "string"}]},
        "variable": [{"key": "task_id", "value": ""}, {"key": "img2img_id", "value": ""}],
        "item": items,
    }
    environment = {
        "name": "diffq local",
        "values": [
            {"key": "baseUrl", "value": "http://127.0.0.1:5001", "enabled": True},
            {"key": "apiKey", "value": "", "enabled": True, "type": "secret"},
        ],
    }
    return collection, environment


def dumps(document: dict) -> str:
    return json.dumps(document, indent=2) + "\n"


def main() -> int:
    collection, environment = build()
    if "--check" in sys.argv:
        stale = [
            p.name
            for p, doc in ((COLLECTION, collection), (ENVIRONMENT, environment))
            if not p.exists() or p.read_text() != dumps(doc)
        ]
        if stale:
            print(f"stale: {', '.join(stale)}; run .venv/bin/python postman/build.py")
            return 1
        return 0
    COLLECTION.write_text(dumps(collection))
    ENVIRONMENT.write_text(dumps(environment))
    print(f"wrote {COLLECTION.relative_to(ROOT)} and {ENVIRONMENT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
