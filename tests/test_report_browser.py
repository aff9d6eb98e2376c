"""``npc report`` in a real browser: Debian's headless Chromium driven by Selenium.

One browser session serves every test of this module. Checked: the page loads with no console
message and no request leaving the file (Chromium's own network log, read through the
performance log), the graph of a golden case has the expected nodes and edges, clicking an
edge's link reaches its policy rule (the folded ``<details>`` opens), the targets' verdicts
(``--targets``) and a change's opened and closed flows (``--against``) are there, drawn by the
page's stylesheet, a counterexample's link reaches its policy, and screenshots are saved under
the temporary directory (``npc-report-*.png``) for a person to look at.

Without ``chromium`` and ``chromedriver`` the tests skip, loudly; where ``CI`` is set they
fail instead, since CI installs both (``.ci/run``).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

from npc.cli import main
from npc.targets import REGISTRY

ROOT = Path(__file__).resolve().parent.parent
GRAPHS = Path(__file__).resolve().parent / "data" / "graphs"
#: As the README's command writes the examples' reports.
#: Every judged target; alibaba's counterexamples need same-node traffic trusted elsewhere.
TARGETS = (
    "--targets",
    ",".join(sorted(t.name for t in REGISTRY.values() if t.reader)),
    "--same-node",
    "trust",
)
#: The change to examples/xyz from a policy set without two of its policies.
AGAINST = ("--against", "tests/data/report/xyz-before.yaml")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")
MISSING = [name for name, found in (("chromium", CHROMIUM), ("chromedriver", DRIVER)) if not found]
if shutil.which("dot") is None:
    MISSING.append("graphviz (dot)")


def _need_browser() -> None:
    if MISSING:
        reason = (
            f"BROWSER TESTS NOT RUN: {', '.join(MISSING)} missing; install Debian's chromium, "
            "chromium-driver and graphviz (.ci/run does)"
        )
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)


@pytest.fixture(scope="module")
def browser() -> Iterator[webdriver.Chrome]:
    _need_browser()

    options = Options()
    options.binary_location = str(CHROMIUM)
    for arg in (
        "--headless=new",
        "--no-sandbox",  # root in a container
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1280,1400",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-default-apps",
        "--disable-sync",
    ):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    driver = webdriver.Chrome(service=Service(str(DRIVER)), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture(scope="module")
def pages(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    _need_browser()
    folder = tmp_path_factory.mktemp("reports")
    found = {}
    cwd = os.getcwd()
    os.chdir(ROOT)
    try:
        for example in ("testing", "xyz"):
            out = folder / f"{example}.html"
            assert main(["report", "-f", f"examples/{example}/", *TARGETS, "-o", str(out)]) == 0
            found[example] = out
        out = found["xyz-change"] = folder / "xyz-change.html"
        assert main(["report", "-f", "examples/xyz/", *TARGETS, *AGAINST, "-o", str(out)]) == 0
    finally:
        os.chdir(cwd)
    return found


def _requests(driver: webdriver.Chrome) -> list[str]:
    """URLs Chromium asked the network for since the last call (its performance log)."""
    urls = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            urls.append(message["params"]["request"]["url"])
    return urls


def _open(driver: webdriver.Chrome, page: Path) -> tuple[list[dict[str, object]], list[str]]:
    driver.get_log("browser")
    _requests(driver)
    driver.get(page.as_uri())
    return driver.get_log("browser"), _requests(driver)


def test_the_checks_see_a_request_and_an_error(browser: webdriver.Chrome, tmp_path: Path) -> None:
    """The two checks below are not vacuous: a page fetching an image is caught by both."""
    page = tmp_path / "fetches.html"
    page.write_text(
        '<!DOCTYPE html><html><body><img src="http://npc-test.invalid/x.png"></body></html>',
        encoding="utf-8",
    )
    console, requests = _open(browser, page)
    assert "http://npc-test.invalid/x.png" in requests
    assert console


@pytest.mark.parametrize("example", ["testing", "xyz", "xyz-change"])
def test_the_report_loads_with_no_console_message_and_no_request(
    browser: webdriver.Chrome, pages: dict[str, Path], example: str
) -> None:
    console, requests = _open(browser, pages[example])
    assert console == []
    assert requests == [pages[example].as_uri()]
    resources = browser.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name)"
    )
    assert resources == []
    shot = Path(tempfile.gettempdir()) / f"npc-report-{example}.png"
    browser.save_screenshot(str(shot))
    assert shot.stat().st_size > 10_000


def _golden_graph(name: str) -> tuple[set[str], set[tuple[str, str]]]:
    dot = (GRAPHS / f"{name}.dot").read_text(encoding="utf-8")
    nodes = set(re.findall(r'^\s+"(\w+)" \[label=', dot, re.M))
    edges = set(re.findall(r'^\s+"(\w+)" -> "(\w+)" \[', dot, re.M))
    return nodes, edges


def test_the_graph_has_the_golden_nodes_and_edges(
    browser: webdriver.Chrome, pages: dict[str, Path]
) -> None:
    _open(browser, pages["xyz"])
    want_nodes, want_edges = _golden_graph("xyz")
    titles = [
        e.get_attribute("textContent")
        for e in browser.find_elements(By.CSS_SELECTOR, "#graph svg g.node > title")
    ]
    assert set(titles) == want_nodes and len(titles) == len(want_nodes)
    edges = [
        tuple(e.get_attribute("textContent").split("->"))
        for e in browser.find_elements(By.CSS_SELECTOR, "#graph svg g.edge > title")
    ]
    assert set(edges) == want_edges and len(edges) == len(want_edges)
    clusters = {
        e.get_attribute("textContent")
        for e in browser.find_elements(By.CSS_SELECTOR, "#graph svg g.cluster > text")
    }
    assert clusters == {"namespace x", "namespace y", "namespace z"}
    addresses = {
        e.text for e in browser.find_elements(By.CSS_SELECTOR, "#graph svg g.node[id^=a] text")
    }
    assert addresses == {"any address", "192.0.2.0/24 except 192.0.2.128/25"}


def test_clicking_an_edge_reaches_its_policy_rule(
    browser: webdriver.Chrome, pages: dict[str, Path]
) -> None:
    """Edge y/b -> x/a: its link leads to x/allow-ns-y-pod-b-and-ns-z spec.ingress[0],
    folded at first, open and on screen after the click, with its file position."""
    _open(browser, pages["xyz"])
    dot = (GRAPHS / "xyz.dot").read_text(encoding="utf-8")
    (edge,) = re.findall(r'"n5" -> "n1" \[.*id="(e\d+)"', dot)
    anchor = "r-x/allow-ns-y-pod-b-and-ns-z/ingress/0"
    rule = browser.find_element(By.ID, anchor)
    assert not rule.is_displayed()
    link = browser.find_element(By.CSS_SELECTOR, f"#graph svg g#{edge} a")
    assert (
        browser.execute_script("return arguments[0].getAttribute('xlink:href')", link)
        == "#" + anchor
    )
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", link)
    browser.find_element(By.CSS_SELECTOR, f"#graph svg g#{edge} text").click()  # its label
    assert browser.execute_script("return decodeURIComponent(location.hash)") == "#" + anchor
    assert rule.is_displayed()
    assert "examples/xyz/policies.yaml:26:5" in rule.text
    policy = browser.find_element(By.ID, "p-x/allow-ns-y-pod-b-and-ns-z")
    assert policy.get_attribute("open") is not None
    shot = Path(tempfile.gettempdir()) / "npc-report-xyz-after-click.png"
    browser.save_screenshot(str(shot))
    assert browser.get_log("browser") == []


def _open_all(driver: webdriver.Chrome, selector: str) -> None:
    driver.execute_script(
        "document.querySelectorAll(arguments[0]).forEach(d => { d.open = true; })", selector
    )


def _background(driver: webdriver.Chrome, selector: str) -> str:
    found: str = driver.execute_script(
        "return getComputedStyle(document.querySelector(arguments[0])).backgroundColor",
        selector,
    )
    return found


def test_the_targets_and_the_change_are_shown_in_two_colours(
    browser: webdriver.Chrome, pages: dict[str, Path]
) -> None:
    """Every target has a verdict row and its folded details; the change lists its opened
    flows and its closed ones in two colours, which come from the page's own stylesheet, and
    draws them over the graph as edges of two colours."""
    _open(browser, pages["xyz-change"])
    names = TARGETS[1].split(",")
    rows = browser.find_elements(By.CSS_SELECTOR, "#targets tr.verdict-row")
    assert [r.find_element(By.CSS_SELECTOR, "td a").text for r in rows] == names
    for name in names:
        assert browser.find_element(By.ID, f"t-{name}").tag_name == "details"
    assert browser.find_element(By.ID, "disagreements").tag_name == "details"
    opened, closed = _background(browser, "tr.opened"), _background(browser, "tr.closed")
    assert opened != closed
    assert "rgba(0, 0, 0, 0)" not in (opened, closed)  # not transparent: the CSS applied
    strokes = {
        e.get_attribute("stroke")
        for e in browser.find_elements(By.CSS_SELECTOR, "#graph svg g.edge[id^=c] path")
    }
    assert len(strokes) == 2  # the change over the graph: opened and closed edges
    _open_all(browser, "#targets details.target, #diff details")
    browser.execute_script(  # two explanations, unfolded for the screenshot
        "document.querySelectorAll('details.reason').forEach((d, i) => { d.open = i < 2; })"
    )
    assert browser.find_element(By.CSS_SELECTOR, "#diff tr.opened").is_displayed()
    assert browser.find_element(By.CSS_SELECTOR, "#diff tr.closed").is_displayed()
    for section in ("graph", "targets", "diff"):
        browser.execute_script("document.getElementById(arguments[0]).scrollIntoView()", section)
        shot = Path(tempfile.gettempdir()) / f"npc-report-xyz-{section}.png"
        browser.save_screenshot(str(shot))
        assert shot.stat().st_size > 10_000
    assert browser.get_log("browser") == []


def test_a_counterexamples_link_reaches_its_policy(
    browser: webdriver.Chrome, pages: dict[str, Path]
) -> None:
    """The first counterexample (a target's output allowing what the policies deny: on
    examples/xyz, alibaba's, whose security groups do not filter pods of one node) links to
    the policy its explanation names; following the link opens that policy."""
    _open(browser, pages["xyz-change"])
    row = browser.find_element(By.CSS_SELECTOR, "#targets tr.counterexample")
    target = browser.execute_script("return arguments[0].closest('details').id", row)
    assert not row.is_displayed()
    browser.find_element(By.CSS_SELECTOR, f"details#{target} > summary").click()
    assert row.is_displayed()
    link = row.find_element(By.CSS_SELECTOR, "a.policy-link")
    key = link.text
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", link)
    link.click()
    assert browser.execute_script("return decodeURIComponent(location.hash)") == f"#p-{key}"
    policy = browser.find_element(By.ID, f"p-{key}")
    assert policy.get_attribute("open") is not None and policy.is_displayed()
    shot = Path(tempfile.gettempdir()) / "npc-report-xyz-counterexample-click.png"
    browser.save_screenshot(str(shot))
    assert browser.get_log("browser") == []
