"""The web page in headless Chromium, as a person uses it: key, prompt, wait, see the image."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.conftest import TEST_KEY

pytestmark = pytest.mark.integration
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
SCREENSHOT = Path(__file__).resolve().parents[2] / "api" / "static" / "screenshot.png"
# Flags for a root, offline, headless run: no sandbox, and no background calls to Google.
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def browser():
    if CHROMIUM is None:
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        yield browser
        browser.close()


def test_submit_a_prompt_and_see_the_image(browser, api, tmp_path):
    page = browser.new_page(viewport={"width": 1100, "height": 1000})
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on(
        "request",
        lambda request: (
            errors.append("external " + request.url)
            if not request.url.startswith(api.url) and not request.url.startswith("data:")
            else None
        ),
    )
    page.goto(api.url + "/")
    assert page.locator("#key-state").inner_text() in ("no key yet", "")
    page.fill("#api-key", TEST_KEY)
    page.click("#key-form button")
    # The page says so once /models and then /samplers have answered.
    page.wait_for_function("document.querySelector('#key-state').textContent === 'key accepted'")
    assert page.locator("#model option[value=tiny]").count() == 1
    assert page.evaluate("localStorage.getItem('diffq-api-key')") == TEST_KEY

    page.fill("#prompt", "a red (dragon:1.2) on a beach")
    page.fill("#width", "64")
    page.fill("#height", "64")
    page.fill("#steps", "4")
    page.fill("#seed", "42")
    page.select_option("#sampler", "k_euler_a")
    page.click("#submit")
    image = page.wait_for_selector("#result img", timeout=60000)
    page.wait_for_function("document.querySelector('#result img').naturalWidth > 0")
    assert image.evaluate("img => img.naturalWidth") == 64
    assert "seed 42" in page.locator("#result figure").inner_text()
    assert "succeeded" in page.locator("#state").inner_text()
    page.wait_for_selector("#gallery img")
    page.screenshot(path=str(tmp_path / "page.png"), full_page=True)
    if os.environ.get("UPDATE_SCREENSHOT"):
        shutil.copy(tmp_path / "page.png", SCREENSHOT)  # the README shows it
    assert page.locator("#strength-box").is_hidden()  # only with an image chosen
    assert not errors, errors


def test_bad_input_is_explained_on_the_page(browser, api):
    page = browser.new_page()
    page.goto(api.url + "/")
    page.evaluate(f"localStorage.setItem('diffq-api-key', '{TEST_KEY}')")
    page.reload()
    page.wait_for_selector("#model option[value=tiny]", state="attached")
    page.fill("#prompt", "x")
    page.fill("#width", "100")  # not a multiple of 8
    page.click("#submit")
    page.wait_for_selector("#messages .error")
    assert "width: must be a multiple of 8" in page.locator("#messages").inner_text()


def test_a_wrong_key_is_reported(browser, api):
    page = browser.new_page()
    page.goto(api.url + "/")
    page.fill("#api-key", "not-a-key")
    page.click("#key-form button")
    page.wait_for_function("document.querySelector('#key-state').textContent === 'key refused'")


def test_swagger_ui_renders_every_operation(browser, api):
    page = browser.new_page(viewport={"width": 1100, "height": 900})
    external = []
    page.on(
        "request",
        lambda request: (
            external.append(request.url)
            if not request.url.startswith(api.url) and not request.url.startswith("data:")
            else None
        ),
    )
    page.goto(api.url + "/docs")
    page.wait_for_selector(".opblock-summary-path", timeout=30000)
    shown = set(page.locator(".opblock-summary-path").all_inner_texts())
    assert {"/generate", "/img2img", "/status/{task_id}", "/tasks/{task_id}", "/recent", "/models"} <= shown
    assert not external  # no CDN
