"""/docs and /redoc work air-gapped, in a real browser: Debian's Chromium, driven by selenium.

The browser resolves no host but 127.0.0.1 and goes through a proxy that does not exist, so
any asset from a CDN would fail to load. In Swagger UI the test authorizes with the OAuth2
password flow (username = email, client_id = tenant slug) and runs GET and POST /items with
the documented example body, unedited. Skips, saying why, when Chromium or its driver is missing.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.isolation.servers import app_env, uvicorn_server

CHROMIUM = next((p for p in ("/usr/bin/chromium", "/usr/bin/chromium-browser") if Path(p).exists()), None)
DRIVER = shutil.which("chromedriver") or next(
    (p for p in ("/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver") if Path(p).exists()), None)
WAIT_SECONDS = 60


@pytest.fixture
def browser():
    if CHROMIUM is None or DRIVER is None:
        pytest.skip("Chromium or chromedriver not installed (Debian: apt-get install chromium chromium-driver)")
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        pytest.skip("selenium is not installed (the dev extra installs it)")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--no-first-run", "--window-size=1400,1000", "--disable-background-networking",
                "--disable-component-update",
                # Network off: no name resolves except the loopback address, and every non-loopback
                # connection goes to a proxy that is not there.
                "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
                "--proxy-server=http://127.0.0.1:9", "--proxy-bypass-list=<-loopback>;127.0.0.1"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(executable_path=DRIVER), options=options)
    driver.set_page_load_timeout(WAIT_SECONDS)
    try:
        yield driver
    finally:
        driver.quit()


def _wait(driver, css: str, text: str | None = None):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(driver, WAIT_SECONDS)
    if text is not None:
        wait.until(ec.text_to_be_present_in_element((By.CSS_SELECTOR, css), text))
    return wait.until(ec.element_to_be_clickable((By.CSS_SELECTOR, css)))


def _click(driver, element) -> None:
    # Scrolled into view and clicked by the page itself: a fixed header may overlap the point.
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'}); arguments[0].click();", element)


def _foreign_resources(driver, base_url: str, kinds: tuple[str, ...] | None = None) -> list[str]:
    """What the page asked of any other origin (by initiator kind: script, link, css, img, ...)."""
    entries = driver.execute_script(
        "return performance.getEntriesByType('resource').map(e => [e.name, e.initiatorType])")
    return [name for name, kind in entries
            if not name.startswith((base_url, "data:", "blob:")) and (kinds is None or kind in kinds)]


def _run_operation(driver, operation_id: str, status: str) -> str:
    block = f"#operations-items-{operation_id}"
    _click(driver, _wait(driver, f"{block} .opblock-summary-control"))
    _click(driver, _wait(driver, f"{block} .try-out__btn"))
    _click(driver, _wait(driver, f"{block} .execute"))
    try:
        return _wait(driver, f"{block} .live-responses-table tbody .response-col_status", status).text
    except Exception:
        from selenium.webdriver.common.by import By

        shown = driver.find_element(By.CSS_SELECTOR, block).text[-3000:]
        pytest.fail(f"{operation_id} did not answer {status}: {shown}")


async def test_swagger_ui_authorizes_and_runs_items_offline(browser, settings, factory):
    from selenium.webdriver.common.by import By

    t = await factory.tenant(email="docs.browser@example.com")
    async with uvicorn_server(app_env(settings), workers=1) as server:
        browser.get(f"{server.base_url}/docs")
        _wait(browser, ".swagger-ui .info .title", "Tenantry")

        _click(browser, _wait(browser, ".swagger-ui .auth-wrapper .authorize"))
        _wait(browser, "#oauth_username").send_keys(t.owner.email)
        browser.find_element(By.CSS_SELECTOR, "#oauth_password").send_keys(t.owner.password)
        browser.find_element(By.CSS_SELECTOR, "#client_id_password").send_keys(t.slug)
        _click(browser, browser.find_element(By.CSS_SELECTOR, ".auth-btn-wrapper .authorize"))
        try:
            _wait(browser, ".auth-btn-wrapper", "Logout")  # shown once the token was granted
        except Exception:
            pytest.fail("Authorize did not log in: " + browser.find_element(By.CSS_SELECTOR, ".modal-ux").text)
        _click(browser, browser.find_element(By.CSS_SELECTOR, ".auth-btn-wrapper .btn-done"))

        assert _run_operation(browser, "create_item", "201").startswith("201")
        assert _run_operation(browser, "list_items", "200").startswith("200")
        assert _foreign_resources(browser, server.base_url) == []

        browser.get(f"{server.base_url}/redoc")
        _wait(browser, ".api-content h1", "Tenantry")
        # ReDoc's "API docs by Redocly" footer links an image of its CDN: decorative, it just
        # does not show offline. Scripts, styles and the API calls all come from the app.
        assert _foreign_resources(browser, server.base_url, ("script", "link", "css", "fetch", "xmlhttprequest")) == []
