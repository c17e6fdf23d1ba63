"""The viewers as a user sees them, in a real Chromium driven by Playwright, with no network.

* ``test_live_viewer_in_jupyterlab``: a JupyterLab server (served under a JupyterHub-like base URL) opens the quick
  start notebook and runs it on the demo models; the live viewer shows a brain, through the server's
  ``jupyter-server-proxy`` URL; the time slider changes the picture; picking a region changes the title of the
  time course; the PNG snapshot output is hidden while the widgets draw.
* ``test_pages_work_offline``: the quick start executed as ``jupyter nbconvert --execute`` does (widget state
  saved), rendered by the docs build and by nbconvert, its HTML report and a kernel-free ``viz.view`` page, each
  opened from disk: every figure shows an image, the viewer cells show their snapshot, and the 3-D view turns on a
  drag.

The two are independent (each runs the notebook once), so ``make test``'s two workers run them side by side.
Screenshots go to ``tests/artifacts/`` (ignored by git); their paths are printed. Chromium is the system one
(``apt-get install chromium``): its absence skips these tests, or fails them under ``TRIBEV2_REQUIRE_SYSTEM=1``.
"""

from __future__ import annotations

import io
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
ARTIFACTS = REPO / "tests" / "artifacts"
QUICKSTART = REPO / "notebooks" / "01_quickstart.ipynb"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
]
BASE_URL = "/user/tester/"  # as on JupyterHub: the live viewer must not assume the server sits at /
LOCAL_HOSTS = ("127.0.0.1", "localhost")

pytestmark = [pytest.mark.slow, pytest.mark.browser]


# -- the browser -----------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def chromium(require_program):
    path = require_program("chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=path, args=CHROMIUM_FLAGS)
        yield browser
        browser.close()


def offline_page(browser, *, allow_local: bool = False, viewport=(1280, 1000)):
    """A page whose requests outside ``file:``/``data:`` (and the local server when ``allow_local``) are
    refused and recorded in ``page.refused``."""
    context = browser.new_context(viewport={"width": viewport[0], "height": viewport[1]})
    page = context.new_page()
    page.refused, page.errors = [], []

    def route(request_route):
        url = request_route.request.url
        local = url.split("/")[2].split(":")[0] in LOCAL_HOSTS if "://" in url else False
        if url.startswith(("file:", "data:", "blob:", "about:")) or (allow_local and local):
            request_route.continue_()
        else:
            page.refused.append(url)
            request_route.abort()

    context.route("**/*", route)
    page.on("pageerror", lambda error: page.errors.append(str(error)))
    return page


def screenshot(target, name: str) -> np.ndarray:
    """Save a screenshot of a page or element under tests/artifacts/ (path printed) and return its pixels."""
    from PIL import Image

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    data = target.screenshot(path=str(path))
    print(f"screenshot: {path}")
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def cortex_share(image: np.ndarray) -> float:
    """Share of the picture that is cortex: grey sulcal shading or a coloured map (not the white background)."""
    pixels = image.astype(int)
    spread, mean = pixels.max(axis=-1) - pixels.min(axis=-1), pixels.mean(axis=-1)
    grey = (spread < 14) & (mean > 60) & (mean < 215)
    coloured = (spread > 40) & (mean < 235)
    return float((grey | coloured).mean())


def differs(a: np.ndarray, b: np.ndarray, share: float = 0.005) -> bool:
    if a.shape != b.shape:
        return True
    return float((np.abs(a.astype(int) - b.astype(int)).sum(axis=-1) > 30).mean()) > share


def images_shown(page, selector: str = "img") -> list[dict]:
    """Every ``<img>`` matching ``selector``: whether it loaded (natural size) and is drawn at a visible size."""
    page.wait_for_load_state("load")
    return page.eval_on_selector_all(
        selector,
        """images => images.map(img => ({
        src: img.currentSrc.slice(0, 80), loaded: img.complete && img.naturalWidth > 0,
        visible: img.getBoundingClientRect().width > 20 && getComputedStyle(img).display !== 'none'}))""",
    )


# -- a JupyterLab server -----------------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def notebook_environment(cache: Path, home: Path) -> dict:
    """The environment of a notebook kernel run outside pytest: the seeded cache, no network, off-screen GL."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key
        not in (
            "TRIBEV2_WEIGHTS",
            "TRIBEV2_EXTRACTORS",
            "TRIBEV2_WHISPER_MODEL",
            "TRIBEV2_ATLAS_DIR",
            "JPY_SESSION_NAME",
        )
    }
    env.update(
        TRIBEV2_CACHE=str(cache),
        HF_HOME=str(home / "hf-home"),
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        VTK_DEFAULT_OPENGL_WINDOW="vtkEGLRenderWindow",
    )
    return env


@pytest.fixture(scope="module")
def jupyter_lab(seeded_cache, tmp_path_factory):
    root = tmp_path_factory.mktemp("lab")
    shutil.copy(QUICKSTART, root)
    port, token = free_port(), secrets.token_hex(16)
    env = notebook_environment(seeded_cache, root)
    # the venv's lab extensions (widgets, jupyter-server-proxy) when the server is started from elsewhere
    env["JUPYTER_PATH"] = str(Path(sys.prefix) / "share" / "jupyter")
    for variable, folder in (
        ("JUPYTER_CONFIG_DIR", "config"),
        ("JUPYTER_RUNTIME_DIR", "runtime"),
        ("JUPYTERLAB_SETTINGS_DIR", "settings"),
        ("JUPYTERLAB_WORKSPACES_DIR", "workspaces"),
    ):
        env[variable] = str(root / ".jupyter" / folder)
    log = open(root / "jupyterlab.log", "wb")  # noqa: SIM115  (the server writes it until the teardown)
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "jupyterlab",
            "--no-browser",
            "--ServerApp.ip=127.0.0.1",
            f"--ServerApp.port={port}",
            f"--IdentityProvider.token={token}",
            f"--ServerApp.base_url={BASE_URL}",
            f"--ServerApp.root_dir={root}",
            "--LabApp.expose_app_in_browser=True",
            "--allow-root",
        ],
        cwd=root,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}{BASE_URL}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                urllib.request.urlopen(f"{url}api/status?token={token}", timeout=2)
                break
            except OSError as error:
                if server.poll() is not None or time.monotonic() > deadline:
                    log_tail = (root / "jupyterlab.log").read_text()[-3000:]
                    raise RuntimeError(f"JupyterLab did not start: {log_tail}") from error
                time.sleep(0.5)
        yield {"url": url, "token": token, "root": root}
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)  # the server and the kernels it started
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
        log.close()


@pytest.fixture(scope="module")
def lab_page(jupyter_lab, chromium):
    """The quick start opened in JupyterLab and run top to bottom."""
    page = offline_page(chromium, allow_local=True, viewport=(1400, 1100))
    page.goto(f"{jupyter_lab['url']}lab/tree/{QUICKSTART.name}?token={jupyter_lab['token']}")
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=90_000)
    kernel = """() => { const panel = window.jupyterapp && window.jupyterapp.shell.currentWidget;
        const session = panel && panel.sessionContext && panel.sessionContext.session;
        return session && session.kernel && session.kernel.status === 'idle'; }"""
    page.wait_for_function(kernel, timeout=90_000)
    page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
    last = page.locator(".jp-Notebook .jp-CodeCell").last
    last.locator(".jp-OutputArea-output", has_text="quickstart.html").wait_for(timeout=300_000)
    yield page
    page.context.close()


def test_live_viewer_in_jupyterlab(lab_page):
    page = lab_page
    viewer = page.locator(".tribev2-viewer").first
    viewer.wait_for(timeout=240_000)
    viewer.scroll_into_view_if_needed()
    frame = viewer.locator("iframe").first
    src = frame.get_attribute("src")
    assert src.startswith(f"{BASE_URL}proxy/"), f"the live viewer is not served through the proxy: {src}"
    # the cortex: at the requested size, with the brain drawn (grey shading and colours) and no toolbar over it
    deadline, image = time.monotonic() + 120, None
    while time.monotonic() < deadline:
        image = screenshot(frame, "jupyterlab-viewer-t0")
        if cortex_share(image) > 0.15:
            break
        page.wait_for_timeout(1000)
    box = frame.bounding_box()
    assert (round(box["width"]), round(box["height"])) == (640, 440), box
    assert cortex_share(image) > 0.15, "no brain in the live viewer"
    inside = page.frame_locator(".tribev2-viewer iframe").first
    assert inside.locator("img, canvas").count() > 0 and inside.locator(".v-toolbar, .v-card").count() == 0  # no menu
    # the snapshot output before the widgets is hidden while they draw
    snapshot = page.locator(".jp-OutputArea-child:has(+ .jp-OutputArea-child .tribev2-viewer) img")
    assert snapshot.count() == 1 and not snapshot.is_visible()
    screenshot(page, "jupyterlab-notebook")

    # the time slider: a key press on its handle moves one TR; the picture follows
    label = viewer.locator(".widget-label", has_text="BOLD at")
    assert label.inner_text().startswith("t = 0 s")
    viewer.locator(".widget-hslider .noUi-handle").first.focus()
    for _ in range(3):
        page.keyboard.press("ArrowRight")
    page.wait_for_function(
        "(label) => label.textContent.startsWith('t = 3 s')", arg=label.element_handle(), timeout=30_000
    )
    deadline, moved = time.monotonic() + 60, None
    while time.monotonic() < deadline:
        moved = screenshot(frame, "jupyterlab-viewer-t3")
        if differs(image, moved):
            break
        page.wait_for_timeout(1000)
    assert differs(image, moved), "moving the time slider did not change the picture"

    # picking a region: the time course's title names it in full
    title = viewer.locator(".widget-html", has_text="mean over").first
    assert "V1 · Primary Visual Cortex" in title.inner_text()  # the notebook picked V1
    viewer.locator(".widget-dropdown", has_text="region").locator("select").select_option(
        label="A1 · Primary Auditory Cortex"
    )
    page.wait_for_function(
        "(el) => el.textContent.includes('A1 · Primary Auditory Cortex: mean over')",
        arg=title.element_handle(),
        timeout=30_000,
    )
    screenshot(viewer, "jupyterlab-viewer-A1")
    assert not page.refused, f"requests left the machine: {page.refused[:5]}"


# -- pages opened from disk --------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def built_pages(seeded_cache, tmp_path_factory):
    """The quick start executed as ``jupyter nbconvert --execute`` does (widget state saved), rendered by nbconvert
    and by the docs build (``make docs``'s command on a copy of the sources), the report it wrote, and a
    ``viz.view`` page of the prediction it saved."""
    import nbformat
    from nbclient import NotebookClient
    from nbconvert import HTMLExporter

    root = tmp_path_factory.mktemp("site")
    for part in ("docs", "tutorials", "notebooks"):
        shutil.copytree(REPO / part, root / part, ignore=shutil.ignore_patterns("_build", "outputs", ".ipynb_*"))
    shutil.copy(REPO / "README.md", root)
    notebook = nbformat.read(root / "notebooks" / QUICKSTART.name, as_version=4)
    saved = os.environ.copy()
    os.environ.update(notebook_environment(seeded_cache, root))
    try:
        NotebookClient(
            notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(root)}}
        ).execute()
    finally:
        os.environ.clear()
        os.environ.update(saved)
    assert "widgets" in notebook.metadata  # the state a rendered notebook would try to draw from a CDN
    nbformat.write(notebook, root / "notebooks" / QUICKSTART.name)
    (root / "nbconvert.html").write_text(HTMLExporter().from_notebook_node(notebook)[0], encoding="utf-8")
    started = time.monotonic()
    subprocess.run(
        [sys.executable, "-m", "sphinx", "-b", "html", "-c", "docs", "-q", ".", "_build/html"],
        cwd=root,
        check=True,
        env={**os.environ, "VTK_DEFAULT_OPENGL_WINDOW": "vtkEGLRenderWindow"},
    )
    print(f"docs built in {time.monotonic() - started:.0f} s")

    import tribev2
    from tribev2.viz import view

    ds = tribev2.open_dataset(root / "outputs" / "quickstart.nc")
    view(ds, percentile=99, threshold=0.5, title="kernel-free view").save(root / "view.html")
    return root


def test_pages_work_offline(built_pages, chromium):
    page = offline_page(chromium)
    site = built_pages / "_build" / "html"

    # the docs site: every page's figures load; the notebook's viewer cell shows its snapshot
    for doc, least in (
        ("docs/index.html", 0),
        ("notebooks/01_quickstart.html", 2),
        ("tutorials/01_quickstart.html", 0),
        ("docs/api.html", 0),
    ):
        page.goto((site / doc).as_uri())
        shown = images_shown(page, "article img")
        assert len(shown) >= least and all(i["loaded"] and i["visible"] for i in shown), (doc, shown)
        screenshot(page, "docs-" + doc.replace("/", "-").removesuffix(".html"))
    page.goto((site / "notebooks" / "01_quickstart.html").as_uri())
    viewer_cell = page.locator(".cell", has_text="viz.brain(ds").first
    assert all(i["loaded"] and i["visible"] for i in images_shown(page, ".cell:has-text('viz.brain(ds') img"))
    assert viewer_cell.locator("img").count() == 1
    screenshot(viewer_cell, "docs-viewer-cell")
    check_view(page.frame_locator("iframe.tribev2-view").first, page, "docs-view")

    # nbconvert's HTML of the notebook as executed (widget state saved): the snapshot, not a blank widget
    page.goto((built_pages / "nbconvert.html").as_uri())
    cell = page.locator(".jp-Cell", has_text="viz.brain(ds").first
    assert any(i["loaded"] and i["visible"] for i in images_shown(page, ".jp-Cell:has-text('viz.brain(ds') img"))
    screenshot(cell, "nbconvert-viewer-cell")
    page.refused.clear()  # nbconvert's template asks CDNs for require.js, MathJax and the widget manager: refused
    page.errors.clear()

    # the HTML report written by the notebook: a brain and a stimulus frame for the TR shown
    page.goto((built_pages / "outputs" / "quickstart.html").as_uri())
    shown = images_shown(page)
    assert len(shown) >= 2 and all(i["loaded"] for i in shown if i["visible"]), shown
    report = screenshot(page, "report")
    assert cortex_share(report) > 0.05

    # the kernel-free viewer page
    page.goto((built_pages / "view.html").as_uri())
    check_view(page, page, "view")
    assert not page.refused and not page.errors, (page.refused[:5], page.errors)


def check_view(frame, page, name: str) -> None:
    """A ``viz.view`` page (or the frame holding one): a brain; a drag turns it; the slider changes it; a click
    names a region and plots it."""
    frame.locator("body[data-ready=true]").wait_for(timeout=30_000)
    canvas = frame.locator("#brain")
    canvas.scroll_into_view_if_needed()
    before = screenshot(canvas, f"{name}-start")
    assert cortex_share(before) > 0.2, "no brain in the kernel-free view"
    box = canvas.bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x + 150, y + 30, steps=10)
    page.mouse.up()
    turned = screenshot(canvas, f"{name}-turned")
    assert differs(before, turned, 0.05), "the 3-D view did not turn on a drag"
    canvas.dblclick()  # back to the preset
    frame.locator("#time").fill("6")
    frame.locator("#time").dispatch_event("input")
    assert frame.locator("#time-label").inner_text().startswith("t = 6 s")
    assert differs(before, screenshot(canvas, f"{name}-t6")), "the time slider did not change the colours"
    page.mouse.click(x, y)  # the middle of a lateral view: cortex
    assert "mean over" in frame.locator("#course-title").inner_text()
    screenshot(frame.locator("body"), f"{name}-region")
