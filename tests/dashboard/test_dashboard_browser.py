"""The dashboard page in real headless Chromium, over a ClickHouse database fed live.

Most tests serve the app from this process on a free loopback port, while a thread keeps
inserting clean events (as the sink would) twice a second: a known history to assert on. The
last runs the real pipeline (`govpulse up`: simulated agencies → broker → stream worker →
sink → the dashboard it serves) and checks the page follows it. Driven with Selenium
through Debian's `chromium` and `chromium-driver` (no browser download). Screenshots go to a
temporary folder (path printed); with GOVPULSE_DOCS_SCREENSHOT=1 the national view in English
is also written to docs/dashboard.png for the README.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import shutil
import signal
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from govpulse.dashboard.app import Limits, build_app
from govpulse.dashboard.background import BackgroundServer
from govpulse.sinks.migrations import migrate
from tests.support.stack_process import UpProcess
from tests.support.synthetic import SyntheticTraffic, insert_dead_letters, insert_events

pytestmark = pytest.mark.e2e

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
DOCS_SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "dashboard.png"
LAPTOP = (1600, 1000)
FEED_EVERY_SECONDS = 0.5


class LiveFeed:
    """Inserts a few events (and now and then a dead letter) every half second until stopped."""

    def __init__(self, client: Any, database: str) -> None:
        self.client, self.database = client, database
        self.traffic = SyntheticTraffic(seed=66)
        self.stopping = threading.Event()
        self.batches = 0
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self.stopping.is_set():
            now = datetime.now(UTC)
            batch = self.traffic.events(15, now - timedelta(seconds=FEED_EVERY_SECONDS), now)
            insert_events(self.client, self.database, batch)
            if self.batches % 4 == 0:
                insert_dead_letters(
                    self.client, self.database, self.traffic.dead_letters(1, now, now)
                )
            self.batches += 1
            self.stopping.wait(FEED_EVERY_SECONDS)

    def __enter__(self) -> LiveFeed:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopping.set()
        self.thread.join(10)


@pytest.fixture(scope="module")
def fed(clickhouse) -> Iterator[str]:
    """A database with an hour of history and a live feed."""
    database = f"dash_e2e_{uuid.uuid4().hex[:8]}"
    migrate(clickhouse, database=database)
    traffic = SyntheticTraffic(seed=65)
    now = datetime.now(UTC)
    insert_events(clickhouse, database, traffic.events(6000, now - timedelta(minutes=55), now))
    insert_dead_letters(
        clickhouse, database, traffic.dead_letters(40, now - timedelta(minutes=5), now)
    )
    with LiveFeed(clickhouse, database):
        yield database


@pytest.fixture(scope="module")
def site(clickhouse, fed: str) -> Iterator[str]:
    """The dashboard's URL over the fed database."""
    with BackgroundServer(build_app(clickhouse, fed)) as server:
        yield server.url


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("dashboard-screenshots")
    print(f"\nscreenshots in {folder}")
    return folder


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    webdriver = pytest.importorskip("selenium.webdriver")
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        pytest.skip("needs Debian's chromium and chromium-driver (apt-get install ...)")
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = str(CHROMIUM)
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--no-first-run",
        "--disable-sync",
        "--disable-dev-shm-usage",
        f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}",
        f"--window-size={LAPTOP[0]},{LAPTOP[1]}",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


def wait_until(condition: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = condition()
        except Exception:  # element not there yet, stale while re-rendered
            value = None
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"not within {timeout} s: {what}")


def text(driver: Any, css: str) -> str:
    from selenium.webdriver.common.by import By

    return driver.find_element(By.CSS_SELECTOR, css).text


def painted_pixels(driver: Any, css: str) -> int:
    """Non-transparent pixels of the canvas under `css`: proof a chart was drawn."""
    return driver.execute_script(
        """
        const canvas = document.querySelector(arguments[0]);
        if (!canvas) return 0;
        const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
        let painted = 0;
        for (let i = 3; i < data.length; i += 4) if (data[i] > 0) painted++;
        return painted;
        """,
        css,
    )


def load(driver: Any, url: str) -> None:
    driver.get(url)
    driver.refresh()  # the hash alone does not reload a page already at that path
    wait_until(
        lambda: driver.execute_script("return document.body.dataset.refreshed"),
        15,
        "the first refresh of the panels",
    )


def test_national_page_renders_its_charts_and_map(browser: Any, site: str, shots: Path) -> None:
    from selenium.webdriver.common.by import By

    load(browser, f"{site}/#lang=th&range=1h")
    assert text(browser, "h1") == "GovPulse ชีพจรภาครัฐ"
    wait_until(lambda: painted_pixels(browser, "#chart-timeseries canvas") > 2000, 10, "chart")
    points = browser.find_element(By.ID, "chart-timeseries").get_attribute("data-points")
    assert points == "60"
    tiles = browser.find_elements(By.CSS_SELECTOR, "#map .tile")
    assert len(tiles) == 77
    active = wait_until(
        lambda: sum(int(t.get_attribute("data-events") or 0) > 0 for t in tiles) >= 60,
        10,
        "most provinces coloured by activity",
    )
    assert active
    kpi = text(browser, "[data-kpi=total_events] .kpi-value").replace(",", "")
    assert int(kpi) >= 6000
    for panel in ("ministries", "departments", "services", "complaints", "products", "channels"):
        rows = browser.find_elements(By.CSS_SELECTOR, f"#{panel} .bar-row")
        assert rows, f"panel {panel} is empty"
    assert painted_pixels(browser, "#chart-sessions canvas") > 200
    browser.save_screenshot(str(shots / "national-th.png"))


def assert_updates_every_two_seconds(driver: Any, transport: str, seconds: float = 9) -> None:
    """Over `seconds`, the panels were refreshed at least every 3 s, all by `transport`."""
    seen: list[int] = []
    transports: set[str] = set()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        stamp, how = driver.execute_script(
            "return [document.body.dataset.refreshed, document.body.dataset.transport]"
        )
        if stamp and (not seen or int(stamp) != seen[-1]):
            seen.append(int(stamp))
            transports.add(how)
        time.sleep(0.1)
    gaps = [b - a for a, b in itertools.pairwise(seen)]
    assert transports == {transport}
    assert len(seen) >= 4 and max(gaps) <= 3000, gaps


def test_the_page_is_pushed_its_panels_every_two_seconds(browser: Any, site: str) -> None:
    load(browser, f"{site}/#lang=en&range=1h&province=10")
    wait_until(
        lambda: browser.execute_script("return document.body.dataset.transport") == "push",
        10,
        "the stream's first message",
    )
    assert_updates_every_two_seconds(browser, "push")


def test_the_page_polls_when_the_stream_is_refused(
    browser: Any, clickhouse, fed: str, site: str
) -> None:
    refusing = build_app(clickhouse, fed, limits=Limits(max_subscribers=0))
    with BackgroundServer(refusing) as server:
        load(browser, f"{server.url}/#lang=en&range=1h&province=10")
        assert_updates_every_two_seconds(browser, "poll")
    load(browser, f"{site}/#lang=th&range=1h")  # the next tests go on from the national page


def test_freshness_figure_updates_within_five_seconds(browser: Any, site: str) -> None:
    from selenium.webdriver.common.by import By

    figure = browser.find_element(By.ID, "freshness")
    first = wait_until(lambda: figure.get_attribute("data-newest"), 5, "a freshness figure")
    wait_until(
        lambda: figure.get_attribute("data-newest") not in ("", first),
        5,
        "the freshness figure to move on to newer data",
    )
    seconds = float(figure.text.split()[0])
    assert 0 <= seconds < 10
    badge = browser.find_element(By.ID, "freshness-badge")
    assert "bad" not in (badge.get_attribute("class") or "").split()


def test_language_switch_changes_the_labels(browser: Any, site: str, shots: Path) -> None:
    from selenium.webdriver.common.by import By

    assert text(browser, "[data-kpi=total_events] .kpi-label") == "เหตุการณ์ทั้งหมด"
    browser.find_element(By.ID, "lang").click()
    wait_until(lambda: text(browser, "h1") == "GovPulse: government activity", 3, "English title")
    assert browser.find_element(By.TAG_NAME, "html").get_attribute("lang") == "en"
    assert text(browser, "[data-kpi=total_events] .kpi-label") == "Events"
    assert text(browser, "#view-title") == "National view"
    assert "Service requests" in text(browser, "#chart-timeseries .u-legend")
    assert "lang=en" in browser.current_url
    time.sleep(2.5)  # one more refresh, so the screenshot shows live figures in English
    browser.save_screenshot(str(shots / "national-en.png"))
    if os.environ.get("GOVPULSE_DOCS_SCREENSHOT") == "1":
        DOCS_SCREENSHOT.parent.mkdir(exist_ok=True)
        shutil.copyfile(shots / "national-en.png", DOCS_SCREENSHOT)


def test_clicking_a_province_opens_its_view(browser: Any, site: str, shots: Path) -> None:
    from selenium.webdriver.common.by import By

    browser.find_element(By.CSS_SELECTOR, '#map .tile[data-code="76"]').click()
    wait_until(lambda: text(browser, "#view-title") == "Province Phetchaburi", 3, "province title")
    assert "province=76" in browser.current_url
    districts = wait_until(
        lambda: browser.find_elements(By.CSS_SELECTOR, "#districts .bar-row"),
        5,
        "the district drill-down",
    )
    assert districts
    assert browser.find_elements(By.CSS_SELECTOR, "#agencies .bar-row")
    tile = browser.find_element(By.CSS_SELECTOR, '#map .tile[data-code="76"]')
    assert "selected" in tile.get_attribute("class").split()
    picker = browser.find_element(By.ID, "province-picker")
    assert picker.get_attribute("value") == "76"
    browser.save_screenshot(str(shots / "province-76.png"))
    browser.find_element(By.ID, "back").click()
    wait_until(lambda: text(browser, "#view-title") == "National view", 3, "back to national")
    assert not browser.find_element(By.ID, "panel-districts").is_displayed()


def test_a_province_can_be_picked_from_the_list(browser: Any, site: str) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    Select(browser.find_element(By.ID, "province-picker")).select_by_value("50")
    wait_until(lambda: text(browser, "#view-title") == "Province Chiang Mai", 3, "Chiang Mai")
    browser.find_element(By.ID, "back").click()


@pytest.mark.parametrize(("width", "height"), [(1366, 768), (3840, 2160)], ids=["laptop", "wall"])
def test_page_fits_laptops_and_wall_screens(
    browser: Any, site: str, shots: Path, width: int, height: int
) -> None:
    browser.set_window_size(width, height)
    try:
        load(browser, f"{site}/#lang=en&range=15m")
        overflow = browser.execute_script(
            "return document.documentElement.scrollWidth - window.innerWidth"
        )
        assert overflow <= 0
        size = browser.execute_script(
            "return parseFloat(getComputedStyle(document.querySelector('.kpi-value')).fontSize)"
        )
        assert size >= (40 if width >= 3000 else 22)  # readable from across the room
        browser.save_screenshot(str(shots / f"screen-{width}x{height}.png"))
    finally:
        browser.set_window_size(*LAPTOP)


# 22:00 on 7 December 2026 in Bangkok (15:00 UTC), the moment the issue was filed from.
EVENING = datetime(2026, 12, 7, 15, 0, tzinfo=UTC).timestamp()
HOUR = 3600
TWELVE_HOUR_MARKERS = re.compile(r"\b[ap]\.?m\.?\b|ก่อนเที่ยง|หลังเที่ยง", re.IGNORECASE)
CLOCK_TIME = re.compile(r"^([01]\d|2[0-3]):[0-5]\d(:[0-5]\d)?$")


def axis_labels(driver: Any, css: str) -> list[str]:
    """The labels the chart under `css` last drew on its time axis (on the canvas)."""
    from selenium.webdriver.common.by import By

    raw = driver.find_element(By.CSS_SELECTOR, css).get_attribute("data-axis-labels")
    return json.loads(raw) if raw else []


def check_24_hour(labels: list[str]) -> None:
    """No am/pm, and every time of day reads 00:00-23:59."""
    for line in (line for label in labels for line in label.split("\n")):
        assert not TWELVE_HOUR_MARKERS.search(line), line
        if ":" in line:
            assert CLOCK_TIME.match(line), line


def test_the_time_formats_follow_the_language(browser: Any, site: str) -> None:
    load(browser, f"{site}/#lang=th&range=1h")
    ticks = [EVENING, EVENING + 2.5 * HOUR, EVENING + 3 * HOUR, EVENING + 26 * HOUR]

    def labels(range_: str, lang: str) -> list[str]:
        script = "return window.govpulseFormat.axisLabels(...arguments)"
        return browser.execute_script(script, ticks, range_, lang)

    assert labels("1h", "th") == ["22:00", "00:30", "01:00", "00:00"]
    assert labels("15m", "en") == ["22:00", "00:30", "01:00", "00:00"]
    assert labels("24h", "th") == [
        "22:00\n7 ธ.ค. 2569",
        "00:30\n8 ธ.ค. 2569",
        "01:00",
        "00:00\n9 ธ.ค. 2569",
    ]
    assert labels("24h", "en") == [
        "22:00\n7 Dec 2026",
        "00:30\n8 Dec 2026",
        "01:00",
        "00:00\n9 Dec 2026",
    ]
    assert labels("7d", "th")[::3] == ["7 ธ.ค. 2569", "9 ธ.ค. 2569"]
    assert labels("7d", "en")[::3] == ["7 Dec 2026", "9 Dec 2026"]
    clock = "return window.govpulseFormat.clock(arguments[0] * 1000, arguments[1])"
    midnight = EVENING + 2 * HOUR + 5
    assert browser.execute_script(clock, midnight, "th") == "8 ธ.ค. 2569 00:00:05"
    assert browser.execute_script(clock, midnight, "en") == "8 Dec 2026, 00:00:05"


def test_thai_mode_shows_buddhist_era_dates_and_24_hour_times(
    browser: Any, site: str, shots: Path
) -> None:
    from selenium.webdriver.common.by import By

    now = datetime.now(ZoneInfo("Asia/Bangkok"))
    ce_years = {str(now.year), str(now.year - 1)}  # a week back may be last year
    be_years = {str(int(year) + 543) for year in ce_years}
    load(browser, f"{site}/#lang=th&range=1h")
    hourly = wait_until(lambda: axis_labels(browser, "#chart-timeseries"), 10, "axis, 1 hour")
    assert all(CLOCK_TIME.match(label) for label in hourly), hourly  # times only
    check_24_hour(hourly)
    check_24_hour(axis_labels(browser, "#chart-sessions"))
    clock = text(browser, "#clock")
    assert str(now.year + 543) in clock and str(now.year) not in clock, clock
    check_24_hour(clock.split()[-1:])
    browser.save_screenshot(str(shots / "axis-th-1h.png"))

    browser.find_element(By.CSS_SELECTOR, '#ranges [data-range="24h"]').click()
    daily = wait_until(
        lambda: [x for x in axis_labels(browser, "#chart-timeseries") if "\n" in x],
        10,
        "dated axis labels, 24 hours",
    )
    check_24_hour(daily)
    assert all(label.split()[-1] in be_years for label in daily), daily
    browser.save_screenshot(str(shots / "axis-th-24h.png"))

    browser.find_element(By.CSS_SELECTOR, '#ranges [data-range="7d"]').click()

    def dates_only() -> list[str]:
        labels = axis_labels(browser, "#chart-timeseries")
        return labels if labels and not any(":" in x for x in labels) else []

    weekly = wait_until(dates_only, 10, "date axis labels, 7 days")
    assert all(label.split()[-1] in be_years for label in weekly), weekly
    check_24_hour(axis_labels(browser, "#chart-sessions"))
    browser.save_screenshot(str(shots / "axis-th-7d.png"))

    browser.find_element(By.ID, "lang").click()

    def english() -> list[str]:
        labels = axis_labels(browser, "#chart-timeseries")
        return labels if labels and all(x.split()[-1] in ce_years for x in labels) else []

    wait_until(english, 10, "English date axis labels, 7 days")
    clock = text(browser, "#clock")
    assert str(now.year) in clock and not any(be in clock for be in be_years), clock
    check_24_hour(clock.split()[-1:])
    browser.save_screenshot(str(shots / "axis-en-7d.png"))


def test_the_page_follows_the_real_pipeline_on_simulated_traffic(
    browser: Any, tmp_path: Path, shots: Path
) -> None:
    from selenium.webdriver.common.by import By

    up = UpProcess(tmp_path)
    try:
        up.wait_for("govpulse is up")
        load(browser, f"{up.dashboard}/#lang=en&range=15m")

        def total() -> int:
            browser.refresh()
            wait_until(lambda: browser.execute_script("return document.body.dataset.refreshed"),
                       15, "a refresh")  # fmt: skip
            return int(text(browser, "[data-kpi=total_events] .kpi-value").replace(",", ""))

        wait_until(lambda: total() > 0, 90, "the simulator's first events on the page")
        wait_until(lambda: painted_pixels(browser, "#chart-timeseries canvas") > 200, 10, "chart")
        figure = browser.find_element(By.ID, "freshness")
        first = wait_until(lambda: figure.get_attribute("data-newest"), 5, "a freshness figure")
        wait_until(
            lambda: figure.get_attribute("data-newest") not in ("", first),
            5,
            "the freshness figure to follow the pipeline",
        )
        assert 0 <= float(figure.text.split()[0]) < 10
        browser.save_screenshot(str(shots / "pipeline-en.png"))
    finally:
        up.proc.send_signal(signal.SIGTERM)
        up.proc.wait(60)
