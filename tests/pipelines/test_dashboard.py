"""The dashboard in a real headless Chromium: the numbers each page shows equal a DuckDB
query on the same Parquet files, filters filter, and a page follows files that arrive
while it is open (as from a running stream)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import duckdb
import pytest
from browser import CHROMEDRIVER, CHROMIUM, chromium, serve_dashboard, wait_for

from sentistream.pipelines.dashboard.app import SUMMARY_COLUMNS, show

REPO = Path(__file__).resolve().parents[2]
pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(not (CHROMIUM and CHROMEDRIVER), reason="needs chromium + chromium-driver"),
]


def _bench():
    spec = importlib.util.spec_from_file_location(
        "dash_bench", REPO / "benchmarks/dashboard_speed.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def sql(root: Path, query: str) -> list[tuple]:
    q = query.format(
        calls=f"read_parquet('{root}/calls/*/*.parquet', hive_partitioning = true)",
        scores=f"read_parquet('{root}/scores/*/*.parquet', hive_partitioning = true)",
        dead=f"read_parquet('{root}/dead_letters/*/*.parquet', hive_partitioning = true)",
    )
    return duckdb.connect().execute(q).fetchall()


@pytest.fixture(scope="module")
def output(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("dash") / "out"
    _bench().write_synthetic_output(root, recordings=60, seed=3, days=6)
    return root


@pytest.fixture(scope="module")
def site(output):
    with serve_dashboard(str(output), refresh_s=1.0) as url, chromium() as driver:
        yield url, driver


def test_overview_numbers_equal_duckdb(site, output):
    url, driver = site
    driver.get(url + "/")
    shown = wait_for(driver, "#kpi-recordings", lambda t: t not in ("", "-"))
    ((recordings, call_rows, hours),) = sql(
        output,
        "SELECT count(DISTINCT video_id), count(*), "
        "(SELECT sum(d) / 3600 FROM "
        "(SELECT max(recording_duration_s) d FROM {calls} GROUP BY video_id)) "
        "FROM {calls}",
    )
    ((segments,),) = sql(output, "SELECT count(*) FROM {scores}")
    ((dead,),) = sql(output, "SELECT count(*) FROM {dead}")
    assert shown == [str(recordings)] and recordings == 60
    texts = {
        k: wait_for(driver, f"#kpi-{k}", bool)[0]
        for k in ("call-rows", "media-hours", "segments", "dead-letters")
    }
    assert texts == {
        "call-rows": str(call_rows),
        "media-hours": f"{round(hours, 2):.2f}",
        "segments": str(segments),
        "dead-letters": str(dead),
    }
    # the missing-reasons table: per modality and reason, the segments without a score
    cells = wait_for(driver, "#missing-table .ag-cell[col-id='segments']", bool)
    expected = [
        n
        for m in ("face", "voice", "text")
        for (n,) in sql(
            output, f"SELECT count(*) FROM {{scores}} WHERE NOT {m}_present GROUP BY {m}_reason"
        )
    ]
    assert sorted(int(c) for c in cells) == sorted(expected)
    assert driver.find_elements("css selector", "#fig-roles .trace")  # the chart was drawn


def test_call_list_filters_and_counts(site, output):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    url, driver = site
    driver.get(url + "/calls")
    ((total,),) = sql(output, "SELECT count(*) FROM {calls}")
    wait_for(driver, "#calls-count", lambda t: t.startswith(f"{total} call rows"))
    box = driver.find_element(By.CSS_SELECTOR, "#f-video")
    box.send_keys("call-00001", Keys.ENTER)
    ((some,),) = sql(output, "SELECT count(*) FROM {calls} WHERE contains(video_id, 'call-00001')")
    wait_for(driver, "#calls-count", lambda t: t.startswith(f"{some} call rows"))
    assert some == 20  # call-000010 .. 000019, two speakers each
    links = wait_for(driver, "#calls-table .ag-cell[col-id='video_id']", bool)
    assert all(t.startswith("call-00001") for t in links)


def test_call_view_shows_the_call_rows_and_a_lane_per_speaker(site, output):
    url, driver = site
    video = "call-000007"
    driver.get(f"{url}/call/{video}")
    wait_for(driver, "#call-summary td[data-column='fused_valence']", bool)
    columns = [c for c, _ in SUMMARY_COLUMNS]
    rows = sql(output, f"SELECT {', '.join(columns)} FROM {{calls}} WHERE video_id = '{video}'")
    assert len(rows) == 2
    for row in rows:
        speaker = row[0]
        for column, value in zip(columns, row, strict=True):
            selector = f"#call-summary td[data-column='{column}'][data-speaker='{speaker}']"
            assert wait_for(driver, selector, bool) == [show(column, value)], (speaker, column)
    titles = wait_for(driver, "#call-timeline .annotation-text", bool)
    assert {"agent (channel 0)", "customer (channel 1)"} <= set(titles)
    assert len(driver.find_elements("css selector", "#call-timeline .scatterlayer .trace")) >= 8
    ((words,),) = sql(
        output,
        f"SELECT count(*) FROM {{scores}} WHERE video_id = '{video}' AND transcript IS NOT NULL",
    )
    assert len(driver.find_elements("css selector", "#call-transcript > div")) == words


def test_a_page_follows_new_files_and_counts_duplicates_once(site, output):
    url, driver = site
    driver.get(url + "/")
    wait_for(driver, "#kpi-recordings", lambda t: t == "60")
    # a stream writes 5 new recordings, and a restarted one the same rows once more
    for name in ("stream-1", "stream-1-again"):
        _bench().write_synthetic_output(output, 5, seed=9, days=1, first_id=1000, name=name)
    wait_for(driver, "#kpi-recordings", lambda t: t == "65", timeout_s=20)
    ((rows, unique),) = sql(output, "SELECT count(*), count(DISTINCT summary_id) FROM {calls}")
    assert rows == unique + 10  # the repeated file: shown once
    assert wait_for(driver, "#kpi-call-rows", bool) == [str(unique)]
