"""`diffq`: generate images, follow jobs and browse results from a terminal.

    diffq generate "a red dragon" -o dragon.png [--model tiny --steps 20 --size 512x512 --seed 42 ...]
    diffq img2img photo.png "as a watercolor" -o out.png [--strength 0.6]
    diffq status TASK_ID | diffq cancel TASK_ID | diffq recent [--limit 10] | diffq models

The API URL and key come from --url/--key, then DIFFQ_URL/DIFFQ_API_KEY, then the key that
`make run` saved in .local/api-key. Exit codes: 0 done, 1 the job failed or was canceled,
2 the request was refused (bad input), 3 the key was refused, 4 the server could not be reached
or was busy.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import sys
import time
from pathlib import Path

import requests

OK, JOB_FAILED, BAD_REQUEST, UNAUTHORIZED, UNAVAILABLE = 0, 1, 2, 3, 4


class CliError(Exception):
    def __init__(self, message: str, code: int):
        super().__init__(message)
        self.code = code


class Api:
    def __init__(self, url: str, key: str | None, timeout: float = 30):
        self.url = url.rstrip("/")
        self.session = requests.Session()
        if key:
            self.session.headers["Authorization"] = f"Bearer {key}"
        self.timeout = timeout

    def call(self, method: str, path: str, **kwargs) -> requests.Response:
        try:
            response = self.session.request(method, self.url + path, timeout=self.timeout, **kwargs)
        except requests.RequestException as exc:
            raise CliError(f"cannot reach {self.url}: {exc.__class__.__name__}", UNAVAILABLE) from None
        if response.status_code >= 400:
            raise _error(response)
        return response

    def download(self, url: str) -> bytes:
        """An image link from a status (signed: no key needed), fetched as given."""
        try:
            response = self.session.get(url, timeout=self.timeout)
        except requests.RequestException as exc:
            raise CliError(f"cannot download {url}: {exc.__class__.__name__}", UNAVAILABLE) from None
        if response.status_code >= 400:
            raise _error(response)
        return response.content

    def job(self, task_id: str) -> dict:
        return self.call("GET", f"/status/{task_id}", params={"format": "json"}).json()


def _error(response: requests.Response) -> CliError:
    try:
        error = response.json()["error"]
        message = error["message"]
        if error.get("fields"):
            message += "\n" + "\n".join(f"  {name}: {problem}" for name, problem in error["fields"].items())
    except (ValueError, KeyError, TypeError):
        message = f"HTTP {response.status_code}"
    if response.status_code == 401:
        return CliError(f"the API key was refused: {message}", UNAUTHORIZED)
    if response.status_code >= 500:
        retry = response.headers.get("Retry-After")
        return CliError(message + (f" (retry after {retry}s)" if retry else ""), UNAVAILABLE)
    return CliError(message, BAD_REQUEST)


def _progress(job: dict, started: float) -> None:
    step, total = job["progress"].get("step", 0), job["progress"].get("total", 0) or 1
    filled = int(30 * min(step, total) / total)
    bar = "#" * filled + "-" * (30 - filled)
    sys.stderr.write(f"\r[{bar}] {step}/{total} {job['state']:<9} {time.monotonic() - started:5.1f}s")
    sys.stderr.flush()


def wait(api: Api, task_id: str, quiet: bool, timeout: float) -> dict:
    started = time.monotonic()
    while True:
        job = api.job(task_id)
        if not quiet:
            _progress(job, started)
        if job["state"] in ("succeeded", "failed", "canceled"):
            if not quiet:
                sys.stderr.write("\n")
            return job
        if time.monotonic() - started > timeout:
            raise CliError(
                f"gave up waiting after {timeout:.0f}s; the job goes on: diffq status {task_id}", UNAVAILABLE
            )
        time.sleep(0.25)


def save_images(api: Api, job: dict, output: Path) -> list[Path]:
    images = [image for image in job["images"] if not image.get("grid")] or job["images"]
    paths = []
    for index, image in enumerate(images):
        path = output if len(images) == 1 else output.with_name(f"{output.stem}-{index}{output.suffix}")
        path.write_bytes(api.download(image["url"]))
        paths.append(path)
    return paths


def _body(args) -> dict:
    body = {"prompt": args.prompt}
    for name in ("model", "steps", "seed", "sampler", "negative_prompt", "n_samples", "guidance_scale", "format"):
        value = getattr(args, name, None)
        if value is not None:
            body[name] = value
    if args.size:
        try:
            width, height = (int(v) for v in args.size.lower().split("x"))
        except ValueError:
            raise CliError(f"--size must look like 512x512, not {args.size!r}", BAD_REQUEST) from None
        body.update(width=width, height=height)
    return body


def submit_and_save(api: Api, path: str, body: dict, args) -> int:
    accepted = api.call("POST", path, json=body).json()
    for warning in accepted.get("warnings", []):
        print(f"warning: {warning}", file=sys.stderr)
    task_id = accepted["task_id"]
    if args.no_wait:
        print(task_id)
        return OK
    job = wait(api, task_id, args.quiet, args.timeout)
    if job["state"] != "succeeded":
        error = job.get("error") or {}
        print(
            f"job {task_id} {job['state']}: {error.get('message', '')} ({error.get('code', job['state'])})",
            file=sys.stderr,
        )
        return JOB_FAILED
    for saved in save_images(api, job, Path(args.output)):
        print(f"{saved}  seed {job['params']['seed']}  task {task_id}")
    return OK


def cmd_generate(api: Api, args) -> int:
    return submit_and_save(api, "/generate", _body(args), args)


def cmd_img2img(api: Api, args) -> int:
    try:
        data = Path(args.image).read_bytes()
    except OSError as exc:
        raise CliError(f"cannot read {args.image}: {exc.strerror}", BAD_REQUEST) from None
    body = {**_body(args), "init_img": base64.b64encode(data).decode("ascii"), "strength": args.strength}
    return submit_and_save(api, "/img2img", body, args)


def cmd_status(api: Api, args) -> int:
    job = api.job(args.task_id)
    print(json.dumps(job, indent=2))
    return OK if job["state"] in ("succeeded", "queued", "running") else JOB_FAILED


def cmd_cancel(api: Api, args) -> int:
    print(json.dumps(api.call("DELETE", f"/tasks/{args.task_id}").json()))
    return OK


def cmd_recent(api: Api, args) -> int:
    for entry in api.call("GET", "/recent", params={"limit": args.limit}).json()["images"]:
        print(f"{entry['task_id']}  {entry.get('model', '')}  seed {entry['seed']}  {entry['url']}")
    return OK


def cmd_models(api: Api, args) -> int:
    catalog = api.call("GET", "/models").json()
    for model in catalog["models"]:
        default = " (default)" if model["name"] == catalog["default"] else ""
        workers = len(model.get("workers") or [])
        print(
            f"{model['name']}{default}  {model['family']}  queued {model.get('queued')}  workers {workers}  "
            f"aliases {', '.join(model['aliases']) or '-'}"
        )
    return OK


def parser() -> argparse.ArgumentParser:
    main = argparse.ArgumentParser(prog="diffq", description=__doc__.split("\n\n")[0])
    main.add_argument("--url", default=os.environ.get("DIFFQ_URL", "http://127.0.0.1:5001"))
    main.add_argument("--key", default=os.environ.get("DIFFQ_API_KEY"))
    commands = main.add_subparsers(dest="command", required=True)

    def job_options(sub):
        sub.add_argument("-o", "--output", default="out.png", help="image file (several: out-0.png, ...)")
        sub.add_argument("--model")
        sub.add_argument("--steps", type=int)
        sub.add_argument("--size", help="WIDTHxHEIGHT, e.g. 512x512")
        sub.add_argument("--seed", type=int)
        sub.add_argument("--sampler")
        sub.add_argument("--scale", dest="guidance_scale", type=float)
        sub.add_argument("--negative", dest="negative_prompt")
        sub.add_argument("-n", dest="n_samples", type=int, help="images to make")
        sub.add_argument("--format", choices=["png", "jpg", "webp"])
        sub.add_argument("--no-wait", action="store_true", help="print the task id and return")
        sub.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
        sub.add_argument("--timeout", type=float, default=600)

    generate = commands.add_parser("generate", help="text to image")
    generate.add_argument("prompt")
    job_options(generate)
    generate.set_defaults(run=cmd_generate)
    img2img = commands.add_parser("img2img", help="image to image")
    img2img.add_argument("image")
    img2img.add_argument("prompt")
    img2img.add_argument("--strength", type=float, default=0.75)
    job_options(img2img)
    img2img.set_defaults(run=cmd_img2img)
    for name, run, help_text in (
        ("status", cmd_status, "a job's status as JSON"),
        ("cancel", cmd_cancel, "cancel a job"),
    ):
        sub = commands.add_parser(name, help=help_text)
        sub.add_argument("task_id")
        sub.set_defaults(run=run)
    recent = commands.add_parser("recent", help="your newest images")
    recent.add_argument("--limit", type=int, default=10)
    recent.set_defaults(run=cmd_recent)
    commands.add_parser("models", help="models, queues and workers").set_defaults(run=cmd_models)
    return main


def _default_key() -> str | None:
    saved = Path(".local/api-key")
    return saved.read_text().strip() if saved.is_file() else None


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    api = Api(args.url, args.key or _default_key())
    try:
        return args.run(api, args)
    except CliError as exc:
        print(f"diffq: {exc}", file=sys.stderr)
        return exc.code
    except KeyboardInterrupt:
        print("\ndiffq: interrupted; the job goes on (diffq status <task id>)", file=sys.stderr)
        return JOB_FAILED


if __name__ == "__main__":
    sys.exit(main())
