"""The web page in a real headless Chromium against a real server: a collection built through the page (the
API key included), a group photo of LFW faces identified, the boxes drawn where the detector found the faces,
face cards with names and match thumbnails, the score, a heat map, an item removed and the collection deleted;
and a service with only a scorer (faces from /detect, scores, the score explained, a dropped file).

Needs Debian's ``chromium`` and ``chromedriver`` (``make browser`` installs them) and ``../shared/data/lfw``;
without them the test skips and says which is missing.
"""

from __future__ import annotations

import re
import shutil
import socket
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import cv2
import httpx
import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
LFW = REPO.parent / "shared" / "data" / "lfw" / "images"
SCREENSHOT_COPY = Path("/tmp/serve-screenshot.png")
API_KEY = "browser-test-key"
GALLERY = {"Colin_Powell": (1, 2, 3), "Tony_Blair": (1, 2, 3), "Gerhard_Schroeder": (1, 2)}
GROUP = ("Colin_Powell", "Tony_Blair", "Gerhard_Schroeder")  # photo 5 of each: not in the gallery
GROUP_PAD = 32  # a margin round each 112-px LFW photo, so the bundled detector finds all three faces
WAIT_S = 20

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not (CHROMIUM and CHROMEDRIVER),
                       reason="no headless browser: chromium and chromedriver not on PATH (install them with "
                              "`make browser`, i.e. apt-get install chromium chromium-driver)"),
]


def lfw(name: str, number: int) -> Path:
    path = LFW / name / f"{name}_{number:04d}.jpg"
    if not path.exists():
        pytest.skip(f"real data not available: {path} (the shared data folder sits beside the repository)")
    return path


def rgb(path: Path) -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)


def group_photo(out: Path) -> tuple[Path, list]:
    """Three LFW photos side by side, and the faces the bundled detector finds in it (what the page must draw)."""
    from finegrain.detect.faces import FaceDetector
    from finegrain.serve.engine import detect_faces

    tiles = [cv2.copyMakeBorder(rgb(lfw(name, 5)), *[GROUP_PAD] * 4, cv2.BORDER_CONSTANT, value=(205, 205, 205))
             for name in GROUP]
    image = np.concatenate(tiles, axis=1)
    cv2.imwrite(str(out), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    faces = detect_faces(FaceDetector.load(), image)  # as the service reports them: one box per face
    assert len(faces) >= 2, f"the bundled detector found {len(faces)} faces in the group photo; the test needs 2+"
    return out, faces


@contextmanager
def serving(settings):
    """The app under uvicorn on a thread, on a port the OS picked (the bound socket is handed over: no race)."""
    import uvicorn

    from finegrain.serve.app import create_app

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(create_app(settings), log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.time() + 30
    while not server.started:
        assert thread.is_alive() and time.time() < deadline, "the server did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


@pytest.fixture
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    # --no-sandbox: CI runs as root, where Chromium's sandbox refuses to start.
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1280,1000", "--disable-extensions", "--no-first-run"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def wait_for(driver, condition, what: str):
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait

    try:
        return WebDriverWait(driver, WAIT_S, poll_frequency=0.1).until(condition)
    except TimeoutException:
        error = driver.find_element("id", "error")
        shown = error.text if error.is_displayed() else "no error shown"
        raise AssertionError(f"timed out waiting for {what} (page error region: {shown})") from None


def loaded(driver, img) -> bool:
    return driver.execute_script("return arguments[0].complete && arguments[0].naturalWidth > 0", img)


def test_page_identifies_faces_in_a_group_photo(tmp_path, make_model, browser):
    from selenium.webdriver.common.by import By

    from finegrain.serve.settings import ServeSettings

    group, faces = group_photo(tmp_path / "group.png")
    gallery = {name: [lfw(name, n) for n in numbers] for name, numbers in GALLERY.items()}
    embed = make_model(tmp_path / "models" / "embed.safetensors")
    scorer = make_model(tmp_path / "models" / "score.safetensors", kind="score")
    settings = ServeSettings(model=str(embed), scorer=str(scorer), data=str(tmp_path / "data"), api_key=API_KEY)
    driver = browser

    def by_id(name):
        return driver.find_element(By.ID, name)

    def face_cards():
        return driver.find_elements(By.CSS_SELECTOR, "#faces .face-card")

    with serving(settings) as url:
        driver.get(url + "/")
        wait_for(driver, lambda d: "Service ready" in by_id("status").text, "the service summary")
        assert driver.find_element(By.TAG_NAME, "html").get_attribute("lang") == "en"
        assert "changes need an API key" in by_id("status").text

        # A write without the key: the service's 401 message appears in the alert region.
        by_id("new-collection-name").send_keys("people")
        by_id("create-collection").click()
        wait_for(driver, lambda d: by_id("error").is_displayed(), "the missing-key error")
        assert by_id("error").get_attribute("role") == "alert"
        assert "X-API-Key" in by_id("error-text").text

        by_id("api-key").send_keys(API_KEY)
        by_id("create-collection").click()
        wait_for(driver, lambda d: by_id("collection-select").get_attribute("value") == "people", "the new collection")
        assert not by_id("error").is_displayed()
        assert driver.execute_script("return sessionStorage.getItem('finegrain.apiKey')") == API_KEY

        by_id("item-detect").click()  # store face crops, as identify compares face crops
        added = 0
        for name, paths in gallery.items():
            label = by_id("item-label")
            label.clear()
            label.send_keys(name)
            by_id("item-files").send_keys("\n".join(str(p) for p in paths))
            by_id("add-items").click()
            added += len(paths)
            wait_for(driver, lambda d, n=added: len(d.find_elements(By.CSS_SELECTOR, "#items .item")) == n,
                     f"{added} items listed")
        items = driver.find_elements(By.CSS_SELECTOR, "#items .item")
        assert {i.find_element(By.CLASS_NAME, "item-label").text for i in items} == set(GALLERY)
        wait_for(driver, lambda d: all(loaded(d, i.find_element(By.CLASS_NAME, "thumb")) for i in items),
                 "item thumbnails")

        # Remove one photo (the last listed) through its button.
        removed = items[-1].get_attribute("data-id")
        items[-1].find_element(By.CLASS_NAME, "remove-item").click()
        wait_for(driver, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#items .item")) == added - 1,
                 "the removed item gone")
        stored = httpx.get(f"{url}/collections/people/items").json()["items"]
        assert len(stored) == added - 1 and removed not in {i["id"] for i in stored}

        # Identify the group photo.
        by_id("photo-input").send_keys(str(group))
        wait_for(driver, lambda d: len(face_cards()) == len(faces), f"{len(faces)} face cards")
        wait_for(driver, lambda d: by_id("score").is_displayed(), "the score")
        cards = face_cards()

        photo = by_id("photo")
        assert loaded(driver, photo) and photo.get_attribute("alt")
        scale = photo.rect["width"] / driver.execute_script("return arguments[0].naturalWidth", photo)
        boxes = driver.find_elements(By.CSS_SELECTOR, "#boxes .face-box")
        assert len(boxes) == len(faces)
        for box, face in zip(boxes, faces):  # both best first
            x1, y1, x2, y2 = face.box
            drawn = box.rect
            assert drawn["x"] - photo.rect["x"] == pytest.approx(x1 * scale, abs=2)
            assert drawn["y"] - photo.rect["y"] == pytest.approx(y1 * scale, abs=2)
            assert drawn["width"] == pytest.approx((x2 - x1) * scale, abs=2)
            assert drawn["height"] == pytest.approx((y2 - y1) * scale, abs=2)
            assert box.tag_name == "button" and box.get_attribute("aria-label").startswith("Face ")

        for card in cards:
            name = card.find_element(By.CLASS_NAME, "identity-name").text
            assert name in set(GALLERY) | {"unknown"}
            assert re.search(r"similarity -?\d\.\d\d", card.find_element(By.CLASS_NAME, "identity").text)
            matches = card.find_elements(By.CLASS_NAME, "match")
            assert len(matches) == 3
            for match in matches:
                thumb = match.find_element(By.TAG_NAME, "img")
                assert thumb.get_attribute("alt").startswith("Match: ")
                assert re.search(r"/collections/people/items/[0-9a-f]{32}/image\?size=128$", thumb.get_attribute("src"))
                assert match.find_element(By.CLASS_NAME, "match-label").text in GALLERY
                assert re.fullmatch(r"-?\d\.\d\d", match.find_element(By.CLASS_NAME, "match-similarity").text)
        wait_for(driver, lambda d: all(loaded(d, img) for img in d.find_elements(By.CSS_SELECTOR, ".match img")),
                 "match thumbnails")
        assert re.fullmatch(r"Score of the whole photo: -?\d+\.\d\d", by_id("score").text)
        wait_for(driver, lambda d: all(re.fullmatch(r"Face score -?\d+\.\d\d", e.text)
                                       for e in d.find_elements(By.CLASS_NAME, "face-score")), "face scores")

        # Select the second face by its box, then explain it against its top match.
        boxes[1].click()
        assert "selected" in cards[1].get_attribute("class") and "selected" not in cards[0].get_attribute("class")
        by_id("explain-button").click()
        heatmap = by_id("heatmap")
        wait_for(driver, lambda d: by_id("heatmap-figure").is_displayed() and loaded(d, heatmap), "the heat map")
        assert "face 2" in heatmap.get_attribute("alt")
        assert by_id("explain-button").get_attribute("aria-pressed") == "true"

        # Every input has a label, every image alt text.
        unlabelled = driver.execute_script(
            "return [...document.querySelectorAll('input, select')]"
            ".filter(e => !document.querySelector(`label[for='${e.id}']`)).map(e => e.id || e.outerHTML)")
        assert unlabelled == []
        assert all(img.get_attribute("alt") for img in driver.find_elements(By.CSS_SELECTOR, "img[src]"))

        # The whole page in one screenshot: the window grown by what the viewport lacks.
        chrome = driver.get_window_size()["height"] - driver.execute_script("return window.innerHeight")
        height = driver.execute_script("return document.documentElement.scrollHeight")
        driver.set_window_size(1280, height + chrome)
        driver.execute_script("window.scrollTo(0, 0)")
        screenshot = tmp_path / "serve-page.png"
        assert driver.save_screenshot(str(screenshot))
        shutil.copyfile(screenshot, SCREENSHOT_COPY)

        # The page's own script raised nothing (the console's failed-request line for the 401 is expected).
        severe = [e["message"] for e in driver.get_log("browser")
                  if e["level"] == "SEVERE" and "401 (Unauthorized)" not in e["message"]]
        assert severe == []

        # A photo without a face is matched whole.
        cv2.imwrite(str(tmp_path / "blobs.png"), cv2.GaussianBlur(
            np.random.default_rng(0).integers(0, 256, (96, 96, 3), dtype=np.uint8), (9, 9), 0))
        by_id("photo-input").send_keys(str(tmp_path / "blobs.png"))
        wait_for(driver, lambda d: "whole photo was matched" in by_id("mode-note").text, "the whole-photo match")
        (card,) = face_cards()
        assert card.find_element(By.TAG_NAME, "h4").text == "Whole photo"
        assert len(card.find_elements(By.CLASS_NAME, "match")) == 3
        assert not driver.find_elements(By.CSS_SELECTOR, "#boxes .face-box")

        # Delete the collection (after the browser's confirm).
        by_id("delete-collection").click()
        driver.switch_to.alert.accept()
        wait_for(driver, lambda d: by_id("collection-select").get_attribute("value") == "", "the collection deleted")
        assert httpx.get(f"{url}/collections").json() == {"collections": []}


def test_page_with_only_a_scorer(tmp_path, make_model, browser):
    """No embedding model: no collections, faces found by /detect, a score per face, the score explained."""
    from selenium.webdriver.common.by import By

    from finegrain.serve.settings import ServeSettings

    photo = lfw("Colin_Powell", 1)
    scorer = make_model(tmp_path / "score.safetensors", kind="score")
    driver = browser

    def by_id(name):
        return driver.find_element(By.ID, name)

    with serving(ServeSettings(model=None, scorer=str(scorer), data=str(tmp_path / "data"))) as url:
        driver.get(url + "/")
        wait_for(driver, lambda d: "no embedding model" in by_id("status").text, "the service summary")
        assert not by_id("collections-section").is_displayed() and not by_id("key-section").is_displayed()

        by_id("photo-input").send_keys(str(photo))
        wait_for(driver, lambda d: by_id("score").is_displayed(), "the score")
        (card,) = wait_for(driver, lambda d: d.find_elements(By.CSS_SELECTOR, "#faces .face-card"), "the face card")
        face_score = card.find_element(By.CLASS_NAME, "face-score")
        wait_for(driver, lambda d: re.fullmatch(r"Face score -?\d+\.\d\d", face_score.text), "the face's score")
        assert card.find_element(By.CLASS_NAME, "identity-name").text == "face"
        assert not card.find_elements(By.CLASS_NAME, "match")
        assert len(driver.find_elements(By.CSS_SELECTOR, "#boxes .face-box")) == 1

        by_id("explain-button").click()
        heatmap = by_id("heatmap")
        wait_for(driver, lambda d: by_id("heatmap-figure").is_displayed() and loaded(d, heatmap), "the heat map")
        assert heatmap.get_attribute("alt") == "Heat map: the regions of face 1 that drove its score"

        # Without face finding, the whole photo is scored and explained.
        by_id("detect-faces").click()
        wait_for(driver, lambda d: by_id("score").is_displayed() and not d.find_elements(By.CLASS_NAME, "face-card"),
                 "the photo scored without faces")
        assert by_id("explain-hint").text == "What the scorer looked at in the photo."

        # A file dropped on the drop zone is analysed like a chosen one.
        driver.execute_script("""
            const canvas = Object.assign(document.createElement("canvas"), {width: 64, height: 64});
            canvas.getContext("2d").fillRect(8, 8, 32, 32);
            canvas.toBlob((blob) => {
              const drop = new DataTransfer();
              drop.items.add(new File([blob], "dropped.png", {type: "image/png"}));
              document.getElementById("drop-zone").dispatchEvent(
                new DragEvent("drop", {dataTransfer: drop, bubbles: true, cancelable: true}));
            });
        """)
        wait_for(driver, lambda d: "dropped.png" in by_id("photo").get_attribute("alt")
                 and by_id("score").is_displayed(), "the dropped photo scored")
