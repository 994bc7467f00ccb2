"""The small job the worker tests run on the tiny model (64x64, 3 steps)."""

TINY_JOB = {
    "model": "tiny",
    "prompt": "a red dragon",
    "negative_prompt": "",
    "steps": 3,
    "guidance_scale": 7.5,
    "width": 64,
    "height": 64,
    "n_samples": 1,
    "n_iter": 1,
    "seed": 5,
    "sampler": "ddim",
    "ddim_eta": 0.0,
}
