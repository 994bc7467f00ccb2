"""The public view of a job: the /status JSON, or the first image's bytes (seed 001)."""

from __future__ import annotations

import base64

from flask import Response, jsonify, request, url_for

from api.errors import ApiError
from shared.images import CONTENT_TYPES
from shared.jobs import SUCCEEDED
from shared.storage import INPUT_KEYS, StorageError

PUBLIC_PARAMS_HIDDEN = tuple(INPUT_KEYS.values())


def storage_unavailable(message: str = "storage cannot be reached; try again shortly") -> ApiError:
    return ApiError(503, "storage_unavailable", message, headers={"Retry-After": "5"})


def stored_image(svc, key: str) -> bytes:
    """An image of a finished job; a clear error when storage lost it or cannot be reached."""
    try:
        return svc.storage.get(key)
    except KeyError:
        raise ApiError(
            410,
            "image_gone",
            f"the job succeeded but its image {key} is no longer in storage (deleted, or the API and the "
            "workers do not share OUTPUT_DIR or the bucket)",
        ) from None
    except StorageError:
        raise storage_unavailable() from None


def wants_json() -> bool:
    """True when the client asked for JSON: ?format=json or an Accept that names application/json."""
    if request.args.get("format") == "json":
        return True
    return "application/json" in request.headers.get("Accept", "")


def status_payload(svc, job: dict, with_base64: bool) -> dict:
    images = []
    for image in job.get("images") or []:
        entry = {k: image[k] for k in ("seed", "width", "height", "format", "prompt", "model") if k in image}
        entry["errors"] = image.get("errors", [])
        if image.get("grid"):
            entry["grid"] = True
        entry["url"] = svc.links.url(image["key"])
        entry["key"] = image["key"]
        if with_base64:
            entry["base64"] = base64.b64encode(stored_image(svc, image["key"])).decode("ascii")
        images.append(entry)
    params = {k: v for k, v in (job.get("params") or {}).items() if k not in PUBLIC_PARAMS_HIDDEN}
    payload = {
        "task_id": job["id"],
        "state": job["state"],
        "kind": job.get("kind"),
        "model": job.get("model"),
        "progress": job.get("progress") or {"step": 0, "total": 0},
        "params": params,
        "images": images,
        "warnings": job.get("warnings") or [],
        "error": job.get("error"),
        "timings": job.get("timings") or {},
        "created_at": job.get("created_at"),
        "started_at": job.get("started_at"),
        "finished_at": job.get("finished_at"),
        "status_url": url_for("jobs.status", task_id=job["id"], _external=True),
    }
    if job.get("result") is not None:
        payload["result"] = job["result"]
    if params.get("webhook_url"):
        deliveries = svc.jobs.webhook_deliveries(job["id"])
        payload["webhook"] = {
            "url": params["webhook_url"],
            "events": params.get("webhook_events"),
            "delivered": sorted({d["event"] for d in deliveries if d.get("delivered")}),
            "deliveries": deliveries,
        }
    return payload


def accepted_response(job_id: str, state: str = "queued", **fields) -> Response:
    """202 for a queued task: its id, state and status URL (also in Location), plus `fields`."""
    response = jsonify(
        {
            "task_id": job_id,
            "state": state,
            "status_url": url_for("jobs.status", task_id=job_id, _external=True),
            **fields,
        }
    )
    response.status_code = 202
    response.headers["Location"] = url_for("jobs.status", task_id=job_id)
    return response


def status_response(svc, job: dict, code: int = 200) -> Response:
    """JSON, or the first image itself when the job succeeded without return_base64 and JSON was not asked for."""
    return_base64 = bool((job.get("params") or {}).get("return_base64"))
    if job["state"] == SUCCEEDED and not return_base64 and not wants_json() and job.get("images"):
        first = job["images"][0]
        response = Response(stored_image(svc, first["key"]), mimetype=CONTENT_TYPES[first["format"]])
        response.headers["X-Task-Id"] = job["id"]
        response.headers["Content-Disposition"] = f'inline; filename="{first["key"].rsplit("/", 1)[-1]}"'
        return response
    response = jsonify(status_payload(svc, job, with_base64=return_base64 and job["state"] == SUCCEEDED))
    response.status_code = code
    return response
