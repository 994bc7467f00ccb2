"""The preprocess extensions (seed 000), registered in this one place.

An entry names the task, the DSL inputs it accepts (with their default filters), where its results
land (`output`), and the worker function that runs it ("module:function", imported only on a
worker). To add an extension, write the function and add an entry here: the API validates
requests against these entries and the worker looks the function up here.
"""

from __future__ import annotations

from dataclasses import dataclass, field

PREPROCESS_QUEUE = "preprocess"
# Where a result lands: one result per image, or one result for the thread's latest prompt.
PER_IMAGE, PER_LATEST_PROMPT = "map-log/image", "latest-log/prompt"


@dataclass(frozen=True)
class Extension:
    task: str
    description: str
    # attribute -> default filter, for the inputs this task reads
    inputs: dict[str, str]
    output: str
    implementation: str
    # inputs the task cannot run without
    required: tuple[str, ...] = field(default_factory=tuple)


EXTENSIONS: dict[str, Extension] = {
    "image_encoding": Extension(
        task="image_encoding",
        description="An embedding per image: the configured CLIP vision encoder (CLIP_VISION_MODEL), "
        "else a deterministic offline encoder of colour layout and histograms.",
        inputs={"log/image": "unprocessed"},
        output=PER_IMAGE,
        implementation="worker.extensions.encoding:run",
        required=("log/image",),
    ),
    "image_projection": Extension(
        task="image_projection",
        description="A 2-D projection (PCA) of the thread's image embeddings, oriented like the previous one.",
        inputs={"preprocess/image_encoding": "all", "preprocess/image_projection": "latest"},
        output=PER_LATEST_PROMPT,
        implementation="worker.extensions.projection:run",
        required=("preprocess/image_encoding",),
    ),
}
