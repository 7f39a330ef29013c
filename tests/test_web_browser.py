"""The console's whole flow in a real headless browser (Debian's chromium and chromium-driver,
driven by selenium): the preparer signs in, uploads a LibreOffice workbook whose account column
the spreadsheet damaged and sees every problem, uploads the fixed one and submits it, signs
out; the approver signs in, approves and sends it against the sandbox gateway (over loopback
HTTP; its callbacks come back to the console's /notify), watches it finish, and downloads the
result, every row of which is checked against the gateway's own record. A screenshot of the
batch page is kept for a person to look at (test-output/batch-page.png)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import openpyxl
import pytest
from helpers import MERCHANT, SECRET, read_result
from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait
from webclient import (
    PASSWORDS,
    console_for,
    free_port,
    gateway_settings,
    make_team,
    serving_on,
)

from batchpay.sandbox.gateway import FAILED, SandboxGateway, Settlement
from batchpay.sandbox.server import serve_in_thread

FIXTURES = Path(__file__).parent / "fixtures"
DAMAGED = FIXTURES / "damaged-accounts.libreoffice.xlsx"
FIXED = FIXTURES / "clean-text-columns.libreoffice.xlsx"  # the same payroll, columns as text
SCREENSHOT = Path(__file__).parent.parent / "test-output" / "batch-page.png"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
DRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
PAID = "0000"
WAIT = 30  # seconds at most for any one thing to appear: a bound, not an assertion


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[WebDriver]:
    if not (Path(CHROMIUM).exists() and Path(DRIVER).exists()):
        pytest.fail("chromium and chromium-driver are needed: apt-get install -y chromium "
                    "chromium-driver")  # fmt: skip
    options = Options()
    options.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--window-size=1280,1600",
                 f"--user-data-dir={tmp_path / 'chromium-profile'}"):  # fmt: skip
        options.add_argument(flag)
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    options.add_experimental_option("prefs", {
        "download.default_directory": str(downloads), "download.prompt_for_download": False,
    })  # fmt: skip
    driver = webdriver.Chrome(options=options, service=Service(executable_path=DRIVER))
    try:
        yield driver
    finally:
        driver.quit()


def wait(driver: WebDriver, condition: object) -> object:
    return WebDriverWait(driver, WAIT).until(condition)  # type: ignore[arg-type]


def sign_in(driver: WebDriver, base: str, name: str) -> None:
    driver.get(base + "/")
    wait(driver, lambda d: d.current_url.endswith("/login"))
    driver.find_element(By.NAME, "username").send_keys(name)
    driver.find_element(By.NAME, "password").send_keys(PASSWORDS[name])
    driver.find_element(By.ID, "sign-in").click()
    wait(driver, lambda d: d.current_url == base + "/")


def upload(driver: WebDriver, base: str, path: Path) -> None:
    driver.get(base + "/")
    driver.find_element(By.ID, "file").send_keys(str(path))
    driver.find_element(By.ID, "upload").click()
    wait(driver, lambda d: "/batches/" in d.current_url)


def state(driver: WebDriver) -> str:
    return str(driver.find_element(By.ID, "state").text)


def act(driver: WebDriver, action: str) -> None:
    driver.find_element(By.ID, f"action-{action}").click()
    wait(driver, lambda d: d.find_elements(By.CSS_SELECTOR, "p.message"))


def test_the_whole_flow_in_a_browser(browser: WebDriver, tmp_path: Path) -> None:
    journal = tmp_path / "team" / "journal.sqlite3"
    journal.parent.mkdir()
    make_team(journal)
    # Orders settle at once and the gateway posts each final status to the console's /notify.
    gateway = SandboxGateway(MERCHANT, SECRET, settlement=Settlement(delay=0.1, fail_rate=0.25,
                                                                     seed=4))  # fmt: skip
    port = free_port()
    with serve_in_thread(gateway) as sandbox:
        env = gateway_settings(sandbox.payout_url, sandbox.query_url,
                               f"http://127.0.0.1:{port}/notify")  # fmt: skip
        console = console_for(journal, env)
        with serving_on(console, port) as base:
            run_the_flow(browser, base, gateway, tmp_path)


def run_the_flow(driver: WebDriver, base: str, gateway: SandboxGateway, tmp_path: Path) -> None:
    # The preparer: the damaged workbook's every problem on the page, its rows to fix marked.
    sign_in(driver, base, "bob")
    upload(driver, base, DAMAGED)
    page = driver.find_element(By.TAG_NAME, "main").text
    assert "cannot be submitted" in page
    assert "4 rows: 0 valid, 4 invalid, 4 warning(s)" in page
    lines = driver.find_elements(By.CSS_SELECTOR, "#problem-lines li")
    assert len(lines) == 8
    assert sum("column 'Account No'" in li.text and "stored as a number" in li.text
               for li in lines) == 4  # fmt: skip
    assert len(driver.find_elements(By.CSS_SELECTOR, "tr.invalid")) == 4
    assert len(driver.find_elements(By.CSS_SELECTOR, "td.error")) == 4
    assert not driver.find_elements(By.ID, "action-submit")
    assert driver.save_screenshot(str(tmp_path / "upload-problems.png"))
    SCREENSHOT.parent.mkdir(exist_ok=True)
    shutil.copy(tmp_path / "upload-problems.png", SCREENSHOT.with_name("upload-problems.png"))

    # The fixed file: planned as a draft, submitted.
    upload(driver, base, FIXED)
    assert state(driver) == "draft"
    assert driver.find_element(By.ID, "rows").text == "4"
    assert driver.find_element(By.ID, "total").text == "4,850"
    assert not driver.find_elements(By.ID, "action-approve")  # a preparer does not approve
    act(driver, "submit")
    assert state(driver) == "submitted"
    batch_url = driver.current_url
    driver.find_element(By.XPATH, "//button[text()='Sign out']").click()
    wait(driver, lambda d: d.current_url.endswith("/login"))

    # The approver: approves, sends, watches it finish.
    sign_in(driver, base, "carol")
    driver.get(batch_url)
    assert not driver.find_elements(By.ID, "action-send")  # not before the approval
    act(driver, "approve")
    assert state(driver) == "approved"
    act(driver, "send")
    wait(driver, lambda d: d.find_element(By.ID, "state").text == "done")
    # The gateway's callbacks land on /notify: every row reaches its final status.
    wait(driver, lambda d: len(gateway.callbacks_sent) == 4)
    assert all(code == 200 for _, _, code in gateway.callbacks_sent)
    driver.refresh()
    outcomes = driver.find_element(By.ID, "outcomes").text
    finals = {o.status for o in gateway.orders.values()}
    assert "processing" not in outcomes and "pending" not in outcomes
    assert finals <= {PAID, FAILED}
    assert "carol" in driver.find_element(By.ID, "audit").text
    SCREENSHOT.parent.mkdir(exist_ok=True)
    assert driver.save_screenshot(str(tmp_path / "batch-page.png"))
    shutil.copy(tmp_path / "batch-page.png", SCREENSHOT)

    # The result, downloaded by the browser: every row as the gateway has it.
    driver.find_element(By.ID, "result-xlsx").click()
    downloads = tmp_path / "downloads"
    wait(driver, lambda d: [p for p in downloads.glob("*.xlsx")])
    [result] = downloads.glob("*.xlsx")
    rows = read_result(result)
    assert len(rows) == 4
    by_trade_no = {o.trade_no: o for o in gateway.orders.values()}
    assert len(by_trade_no) == 4
    for row in rows:
        order = by_trade_no[row["tradeNo"]]
        assert row["outcome"] == ("paid" if order.status == PAID else "failed"), row
        assert row["status"] == order.status  # the callback's, the latest the gateway said
        assert row["amountValue"] == order.amount
        # The fixed file's accounts, leading zeros and all, are what the gateway was asked.
        assert row["Account No"] in order.fields.values()
    summary = openpyxl.load_workbook(result, read_only=True)["Summary"]
    said = {str(r[0]): str(r[1]) for r in summary.iter_rows(values_only=True) if r[0]}
    assert said["submitted by"].startswith("bob ")
    assert said["approved by"].startswith("carol ")
    assert said["sent by"].startswith("carol (user) ")
