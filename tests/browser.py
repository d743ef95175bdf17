"""Helpers for the browser tests (and ``benchmarks/dashboard_speed.py``): the dashboard
served on loopback, and the system Chromium driven by Selenium.

Chromium comes from Debian (``apt-get install chromium chromium-driver``, as ``.ci/run``
does): Selenium's and Playwright's own browser downloads need the internet. Tests skip
where the two binaries are absent.
"""

from __future__ import annotations

import contextlib
import shutil
import threading
import time
from collections.abc import Callable, Iterator

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")


@contextlib.contextmanager
def serve_dashboard(root: str, refresh_s: float = 10.0) -> Iterator[str]:
    """The dashboard over ``root`` on a free loopback port; yields its base URL."""
    import logging

    from werkzeug.serving import make_server

    from sentistream.pipelines.dashboard.app import build_app

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per request
    app = build_app(root, refresh_s=refresh_s)
    server = make_server("127.0.0.1", 0, app.server, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=10)


@contextlib.contextmanager
def chromium(width: int = 1400, height: int = 1000) -> Iterator:
    """A headless Chromium under Selenium, closed afterwards."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    if not (CHROMIUM and CHROMEDRIVER):
        raise RuntimeError("needs Debian's chromium and chromium-driver packages")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        f"--window-size={width},{height}",
    ):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def wait_for(
    driver, selector: str, ready: Callable[[str], bool], timeout_s: float = 30.0
) -> list[str]:
    """Wait until every element matching the CSS ``selector`` exists and ``ready(text)``
    holds for the first; returns the texts of all matches."""
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By

    deadline = time.monotonic() + timeout_s
    last: list[str] = []
    while time.monotonic() < deadline:
        try:
            last = [e.text for e in driver.find_elements(By.CSS_SELECTOR, selector)]
        except StaleElementReferenceException:  # re-rendered while read
            continue
        if last and ready(last[0]):
            return last
        time.sleep(0.05)
    raise TimeoutError(f"{selector!r} not ready after {timeout_s} s (last: {last[:3]})")
