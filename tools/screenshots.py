"""Screenshots of the demo in the Dagster UI, so that what a user sees is looked at, not assumed (issue 13).

Set-up once (Debian's browser and driver; selenium drives them, nothing is downloaded at run time)::

    apt-get update && apt-get install -y chromium chromium-driver
    .venv/bin/pip install -e '.[screenshots]'

Run::

    .venv/bin/python tools/screenshots.py                 # PNGs into build/screenshots/
    .venv/bin/python tools/screenshots.py --serve         # prepare, then keep the UI up until Ctrl-C

It starts the demo's embedded simulator and S3 server on free ports (so it never collides with a running
``make ui``), seeds two prompt datasets of its own beside the demo's (``ten-videos``: a 10-row table;
``hostile``: prompts and ids full of Markdown, HTML and links, one failing, one with 60- and 110-character
words), and runs on a fresh ``DAGSTER_HOME``: one day of the daily pipeline, a single-run backfill over every
dataset but ``hostile``, the ``hostile`` partition with ``allow_partial``, and the catalogue. Then
``dagster-webserver`` serves that instance on a free port and headless Chromium, its page 1600 x 1000 px, saves:

    01 the dataset_videos asset page        02-05 partition ten-videos: page, videos table (top, bottom), end
    06-09 the same for partition hostile    10 the checks       11-12 the backfill run and its STEP_OUTPUT
    13 a daily_videos partition             14 dataset_prompts (its description)        15 the catalogue

With ``--budget 24/day`` (``MINIMAX_BUDGET``, see docs/BUDGET.md) the demo's resource has a budget, and three more:

    16 the budget's metadata of partition ten-videos     17 the asset's metadata plots (budget_day_*, credits)
    18 the hostile run's log: the 80 % warning and the prompts the budget stopped

For each videos table it prints the table's width against the dialog, whether every column is visible, the
pictures (inline thumbnails or remote URLs), the links and the HTTP status each one gets, as a browser would.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
WINDOW = (1600, 1000)

#: Ten ordinary prompts: the table a person reads must show every column of these in a 1600 px window.
TEN_VIDEOS = [
    {"id": f"clip-{i:02d}", "prompt": text}
    for i, text in enumerate(
        [
            "A lighthouse on a cliff, waves crashing in slow motion under a stormy sky",
            "A paper boat drifting down a rain-soaked street gutter at dusk",
            "A hummingbird hovering over a red flower, wings frozen by a high shutter speed",
            "A desert caravan crossing dunes at sunrise, long shadows on the sand",
            "A city tram gliding through autumn leaves in an old European town",
            "A red fox trotting through fresh snow in a birch forest",
            "Northern lights rippling over a frozen lake with a lone cabin",
            "A chef flipping a pancake in a sunlit kitchen, flour in the air",
            "A time-lapse of clouds rolling over mountain peaks",
            "A cat watching goldfish in a bowl, reflections on the glass",
        ]
    )
]

#: Whoever writes a prompt dataset must not be able to put an image, a link or a table break in the UI.
HOSTILE = [
    {"id": "img", "prompt": "![x](http://evil.example/x.png) a tracking pixel"},
    {"id": "link", "prompt": "[click me](javascript:alert(1)) and <https://evil.example/a>"},
    {"id": "html", "prompt": '<img src="http://evil.example/y.png"> <b>bold</b> &lt;escaped&gt; &amp;'},
    {"id": "pipes|and`ticks`", "prompt": "a | b || c `code` ``more`` *star* _under_ **strong** ~~gone~~"},
    {"id": "# heading", "prompt": "# heading\n- list item\n> quote\n\n1. numbered\n---"},
    {"id": "autolinks", "prompt": "visit http://x.example or www.evil.example or mail a@evil.example"},
    {"id": "fails", "prompt": "a failing video ![e](http://evil.example/e.png) [sim:fail]"},
    {"id": "an-identifier-of-sixty-characters-without-a-single-space-0123", "prompt": "x" * 110},
]


def free_port() -> int:
    """A free TCP port on the loopback interface."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def prepare(home: Path, services: Any, day: str) -> dict[str, str]:
    """Seed the extra datasets and run the pipelines on the instance in ``home``; returns run ids by name."""
    import dagster as dg

    from minimax_dagster.demo.jobs import catalogue_job, daily_job, dataset_job
    from minimax_dagster.demo.services import DEMO_DATASETS
    from minimax_dagster.storage import put_json

    s3 = services.s3_client()
    put_json(s3, services.bucket, f"{services.prefix}/datasets/ten-videos.json", TEN_VIDEOS)
    put_json(s3, services.bucket, f"{services.prefix}/datasets/hostile.json", HOSTILE)
    quiet: dict[str, Any] = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
    runs: dict[str, str] = {"day": day}
    with dg.DagsterInstance.from_config(str(home)) as instance:

        def run(name: str, job: Any, tags: dict[str, str], config: dict[str, Any] | None = None) -> None:
            print(f"run {name} ...", flush=True)
            with dg.execute_job(
                dg.reconstructable(job), instance=instance, tags=tags, run_config={**quiet, **(config or {})}
            ) as result:
                runs[name] = result.run_id
                if not result.success:
                    print(f"  run {name} did not succeed (the screenshots show why)", flush=True)

        run("daily", daily_job, {"dagster/partition": day})
        names = sorted([*DEMO_DATASETS, "ten-videos"])
        instance.add_dynamic_partitions("prompt_datasets", [*names, "hostile"])
        run(
            "backfill",
            dataset_job,
            {"dagster/asset_partition_range_start": names[0], "dagster/asset_partition_range_end": names[-1]},
        )
        run(
            "hostile",
            dataset_job,
            {"dagster/partition": "hostile"},
            {"ops": {"dataset_videos": {"config": {"allow_partial": True}}}},
        )
        run("catalogue", catalogue_job, {})
    return runs


@contextmanager
def webserver(env: dict[str, str], port: int) -> Iterator[str]:
    """``dagster-webserver`` on the instance of ``env["DAGSTER_HOME"]``, stopped (its whole group) on exit."""
    cmd = [sys.executable, "-m", "dagster_webserver", "-w", str(REPO / "workspace.yaml")]
    cmd += ["-h", "127.0.0.1", "-p", str(port)]
    log = open(Path(env["DAGSTER_HOME"]) / "webserver.log", "wb")  # noqa: SIM115 (closed below)
    child = subprocess.Popen(
        cmd, env=env, cwd=REPO, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"{base}/server_info", timeout=2):
                    break
            except OSError:
                if child.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"dagster-webserver did not start; see {log.name}") from None
                time.sleep(0.5)
        yield base
    finally:
        if child.poll() is None:
            os.killpg(child.pid, signal.SIGTERM)
            try:
                child.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(child.pid, signal.SIGKILL)
                child.wait()
        log.close()


def browser(profile: Path) -> Any:
    """Headless Debian Chromium through Debian's chromedriver, with a new empty profile."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        f"--window-size={WINDOW[0]},{WINDOW[1]}",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    # --window-size is the window; make the page itself (the viewport) WINDOW big.
    inner = driver.execute_script("return [window.innerWidth, window.innerHeight]")
    outer = driver.get_window_size()
    driver.set_window_size(outer["width"] + WINDOW[0] - inner[0], outer["height"] + WINDOW[1] - inner[1])
    return driver


def skip_community_dialog(driver: Any, base: str) -> None:
    """Mark the "Join the Dagster community" dialog as seen (the UI keeps that in localStorage)."""
    driver.get(f"{base}/server_info")
    driver.execute_script("localStorage.setItem('communityNux', 'true')")


def wait_text(driver: Any, text: str, timeout: float = 60) -> None:
    """Wait until ``text`` is on the page (the UI renders after its GraphQL queries answer)."""
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, timeout).until(lambda d: text in d.find_element("tag name", "body").text)
    time.sleep(1.0)  # images and the layout settle after the text appears


def wait_xpath(driver: Any, xpath: str, timeout: float = 60) -> None:
    """Wait until an element matching ``xpath`` is on the page."""
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, timeout).until(lambda d: d.find_elements("xpath", xpath))
    time.sleep(1.0)


def shoot(driver: Any, out: Path, name: str) -> Path:
    """Save the window as ``out/name.png``."""
    path = out / f"{name}.png"
    driver.save_screenshot(str(path))
    print(f"  {path}", flush=True)
    return path


#: In the page: the open dialog's tables, their width against the window, their images and links.
INSPECT_JS = """
const dialog = document.querySelector('.bp5-dialog, [role=dialog]') || document.body;
const tables = [...dialog.querySelectorAll('table')];
return {
  window: window.innerWidth,
  dialog: Math.round(dialog.getBoundingClientRect().width),
  tables: tables.map(t => ({
    width: Math.round(t.getBoundingClientRect().width),
    right: Math.round(t.getBoundingClientRect().right),
    scroll: t.parentElement ? t.parentElement.scrollWidth - t.parentElement.clientWidth : 0,
    rows: t.querySelectorAll('tbody tr').length,
    columns: [...t.querySelectorAll('thead th')].map(th => ({name: th.textContent,
      visible: th.getBoundingClientRect().right <= dialog.getBoundingClientRect().right})),
    images: [...t.querySelectorAll('img')].map(i => ({
      src: i.getAttribute('src').slice(0, 40), w: i.getBoundingClientRect().width,
      h: i.getBoundingClientRect().height})),
    links: [...t.querySelectorAll('a')].map(a => ({href: a.href, text: a.textContent})),
    emphasis: t.querySelectorAll('em, strong, del, code, h1, h2, h3, blockquote, ul, ol').length,
  })),
};
"""


def open_markdown(driver: Any, label: str) -> bool:
    """Click the ``[Show Markdown]`` of the metadata row ``label``; False when the row shows it inline."""
    rows = driver.find_elements(
        "xpath", f"//tr[td[1][normalize-space()='{label}']]//a[normalize-space()='[Show Markdown]']"
    )
    if not rows:
        return False
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", rows[0])
    rows[0].click()
    time.sleep(1.5)
    return True


def scroll_dialog(driver: Any, to: str) -> None:
    """Scroll the open dialog to its ``top`` or ``bottom``."""
    driver.execute_script(
        """let e = document.querySelector('.bp5-dialog');
        for (; e; e = e.parentElement) { e.scrollTop = arguments[0] === 'top' ? 0 : e.scrollHeight; }""",
        to,
    )
    time.sleep(0.5)


def close_dialog(driver: Any) -> None:
    """Close the open dialog with its Close button."""
    for button in driver.find_elements("xpath", "//button[normalize-space()='Close']"):
        if button.is_displayed():
            button.click()
            time.sleep(0.5)
            return


def opens(url: str) -> str:
    """What a browser would get for ``url``: status and content type, or why it does not open."""
    if not url.startswith(("http://", "https://")):
        return "not a web link: opens nothing in a browser"
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return f"{r.status} {r.headers.get('Content-Type')}"
    except OSError as exc:
        return f"does not open ({exc})"


def report_table(driver: Any, name: str) -> None:
    """Print what the open table shows: width against the window, images, links (and whether each opens)."""
    info = driver.execute_script(INSPECT_JS)
    print(f"  {name}: window {info['window']} px, dialog {info['dialog']} px")
    for t in info["tables"]:
        print(
            f"    table {t['width']} px wide (right edge {t['right']}), hidden by scrolling {t['scroll']} px, "
            f"{t['rows']} rows, markup from text: {t['emphasis']}"
        )
        hidden = [c["name"] for c in t["columns"] if not c["visible"]]
        print(f"    {len(t['columns'])} columns, " + (f"NOT VISIBLE: {hidden}" if hidden else "all visible"))
        sizes = Counter(
            f"{i['w']:.0f}x{i['h']:.0f} "
            + ("inline thumbnail" if i["src"].startswith("data:image/") else i["src"])
            for i in t["images"]
        )
        for size, n in sorted(sizes.items()):
            print(f"    {n} img {size}")
        texts = Counter(a["text"] for a in t["links"])
        print(f"    link texts: {dict(texts)}")
        for href in sorted({a["href"] for a in t["links"]})[:3]:
            print(f"    link {href[:110]} : {opens(href)}")


def report_links(driver: Any, labels: tuple[str, ...]) -> None:
    """Print where the metadata rows ``labels`` link to and whether it opens."""
    for label in labels:
        for a in driver.find_elements("xpath", f"//tr[td[1][normalize-space()='{label}']]//a[@href]"):
            href = a.get_attribute("href")
            print(f"  {label}: {href[:110]} : {opens(href)}")
            break
        else:
            texts = driver.find_elements("xpath", f"//tr[td[1][normalize-space()='{label}']]/td[last()]")
            print(f"  {label}: no link" + (f" ({texts[0].text[:80]!r})" if texts else " (no such row)"))


def take_budget_screenshots(driver: Any, base: str, out: Path, runs: dict[str, str]) -> None:
    """The budget in the UI: a partition's budget metadata, the asset's plots, the warning in a run's log."""
    driver.get(f"{base}/assets/dataset_videos?view=partitions&partition=ten-videos")
    wait_xpath(driver, "//tr/td[1][normalize-space()='new_paid_videos']")
    row = driver.find_elements("xpath", "//tr/td[1][normalize-space()='budget_day_used_pct']")
    if row:
        driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", row[0])
        time.sleep(0.5)
    shoot(driver, out, "16-budget-metadata")
    driver.get(f"{base}/assets/dataset_videos?view=overview")
    wait_xpath(driver, "//button[normalize-space()='Plots']")
    plots = driver.find_elements("xpath", "//button[normalize-space()='Plots']")[0]
    driver.execute_script("arguments[0].scrollIntoView({block: 'start'})", plots)
    plots.click()  # the metadata as plots, one point per partition
    wait_text(driver, "budget_day_used_pct")
    time.sleep(2)
    shoot(driver, out, "17-budget-plots")
    driver.get(f"{base}/runs/{runs['hostile']}?logs=budget")
    wait_text(driver, "budget at", timeout=90)
    time.sleep(1)
    shoot(driver, out, "18-budget-warning")


def take_screenshots(
    base: str, out: Path, runs: dict[str, str], profile: Path, *, budget: bool = False
) -> None:
    """Visit the pages and save the PNGs."""
    driver = browser(profile)
    try:
        skip_community_dialog(driver, base)
        driver.get(f"{base}/assets/dataset_videos")
        wait_text(driver, "dataset_videos")
        shoot(driver, out, "01-asset-overview")

        for n, partition in ((2, "ten-videos"), (6, "hostile")):
            driver.get(f"{base}/assets/dataset_videos?view=partitions&partition={partition}")
            wait_xpath(driver, "//tr/td[1][normalize-space()='videos']")
            shoot(driver, out, f"{n:02d}-partition-{partition}")
            if open_markdown(driver, "videos"):
                scroll_dialog(driver, "top")
                shoot(driver, out, f"{n + 1:02d}-partition-{partition}-videos-top")
                scroll_dialog(driver, "bottom")
                shoot(driver, out, f"{n + 2:02d}-partition-{partition}-videos-bottom")
                report_table(driver, f"{partition} videos")
                close_dialog(driver)
            else:
                report_table(driver, f"{partition} videos (inline)")
            last = driver.find_elements(
                "xpath", "//tr/td[1][normalize-space()='path' or normalize-space()='manifest']"
            )
            if last:
                driver.execute_script("arguments[0].scrollIntoView({block: 'end'})", last[-1])
                time.sleep(0.5)
            shoot(driver, out, f"{n + 3:02d}-partition-{partition}-end")
            report_links(driver, ("first_video", "manifest", "path"))

        driver.get(f"{base}/assets/dataset_videos?view=checks")
        wait_text(driver, "videos_in_s3")
        shoot(driver, out, "10-checks")

        driver.get(f"{base}/runs/{runs['backfill']}?logs=step%3Adataset_videos")
        wait_text(driver, "STEP_OUTPUT", timeout=90)
        shoot(driver, out, "11-run")
        outputs = driver.find_elements("xpath", "//*[normalize-space()='STEP_OUTPUT']")
        if outputs:
            driver.execute_script("arguments[0].scrollIntoView({block: 'start'})", outputs[0])
            time.sleep(1)
            shoot(driver, out, "12-run-step-output")

        driver.get(f"{base}/assets/daily_videos?view=partitions&partition={runs['day']}")
        wait_xpath(driver, "//tr/td[1][normalize-space()='videos']")
        shoot(driver, out, "13-daily-videos-partition")

        driver.get(f"{base}/assets/dataset_prompts")
        wait_text(driver, "dataset_prompts")
        shoot(driver, out, "14-dataset-prompts")

        driver.get(f"{base}/assets")
        wait_text(driver, "video_catalogue")
        shoot(driver, out, "15-catalog")
        if budget:
            take_budget_screenshots(driver, base, out, runs)
    finally:
        driver.quit()


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--output", type=Path, default=REPO / "build" / "screenshots", help="folder for the PNGs"
    )
    parser.add_argument("--day", default="2026-11-27", help="the daily partition to run")
    parser.add_argument("--serve", action="store_true", help="keep the UI up after preparing, until Ctrl-C")
    parser.add_argument("--generation-seconds", type=float, default=1.0, help="simulated generation time")
    parser.add_argument(
        "--budget", default="", help="MINIMAX_BUDGET for the demo, e.g. 24/day (docs/BUDGET.md)"
    )
    args = parser.parse_args(argv)
    sys.path.insert(0, str(REPO))
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's request log
    from minimax_dagster.demo.services import demo_services

    args.output.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="minimax-screens-"))
    home = work / "dagster_home"
    home.mkdir()
    shutil.copy(REPO / "minimax_dagster" / "demo" / "dagster.yaml", home / "dagster.yaml")
    try:
        with demo_services(generation_seconds=args.generation_seconds) as services:
            os.environ.update(services.env())
            os.environ["DAGSTER_HOME"] = str(home)
            if args.budget:
                os.environ["MINIMAX_BUDGET"] = args.budget
            runs = prepare(home, services, args.day)
            env = {**os.environ}
            with webserver(env, free_port()) as base:
                print(f"Dagster UI: {base}  (instance {home})", flush=True)
                if args.serve:
                    # Started in the background by a shell, SIGINT may arrive ignored: handle both explicitly.
                    for sig in (signal.SIGINT, signal.SIGTERM):
                        signal.signal(sig, signal.default_int_handler)
                    with suppress(KeyboardInterrupt):
                        signal.pause()
                else:
                    take_screenshots(
                        base, args.output, runs, work / "chromium-profile", budget=bool(args.budget)
                    )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
