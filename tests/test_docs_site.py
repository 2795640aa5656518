"""The site builds strictly from freshly measured tables and figures, shows the real source, and
its two columns render side by side on a wide screen and stacked on a narrow one in Chromium."""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tests.docs_tools import DOCS, ROOT, section
from tests.reference import subprocess_env

GENERATED = DOCS / "assets" / "generated"
pytestmark = pytest.mark.slow  # measures, draws and builds the whole site: about a minute


def _run(args: list[str], **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=ROOT, capture_output=True, text=True, env=subprocess_env(NO_MKDOCS_2_WARNING="1"), **kwargs)


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """Run both generator scripts (in parallel: they are independent), then ``mkdocs build --strict``."""
    scripts = [
        subprocess.Popen([sys.executable, f"docs/scripts/{name}.py", "--out", str(GENERATED)], cwd=ROOT,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=subprocess_env())
        for name in ("pitfalls", "figures")
    ]
    for proc in scripts:
        out, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, f"{proc.args}: {err[-3000:]}"
    target = tmp_path_factory.mktemp("site")
    build = _run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(target)], timeout=300)
    assert build.returncode == 0, build.stdout[-2000:] + build.stderr[-3000:]
    return target


def _text(page: Path) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", page.read_text()))


def test_figures_and_tables_are_generated_for_every_variant(site):
    import alexnet_keras
    import alexnet_torch

    variants = [v for v in alexnet_torch.VARIANTS if v in alexnet_keras.VARIANTS]
    assert variants
    for v in variants:
        for name in (f"arch-{v}.svg", f"parity-{v}.svg"):
            svg = (site / "assets" / "generated" / name).read_text()
            assert svg.lstrip().startswith("<?xml") and "<svg" in svg, name
        shapes = (GENERATED / f"shapes-{v}.md").read_text()
        assert "NCHW" in shapes and "NHWC" in shapes
    arch = (GENERATED / "arch-paper.svg").read_text()
    for shape in ("N×96×55×55", "N×55×55×96", "N×256×6×6", "N×6×6×256"):  # both layouts, from the run
        assert shape in arch


def test_pages_show_the_source_not_a_copy(site):
    """The regions the pages include appear verbatim in the built HTML, under their file's title."""
    paper = _text(site / "paper" / "index.html")
    blocks = ("block1", "block2", "block3", "classifier")  # the literal layers, block by block, in both
    for path, name in [*((f"alexnet_{f}/paper.py", b) for b in blocks for f in ("torch", "keras")),
                       ("alexnet_torch/paper.py", "forward"), ("alexnet_keras/layers.py", "lrn")]:
        code = section(ROOT / path, name)
        assert code.strip() in paper, f"{path}:{name} is not on the page as it is in the source"
        assert path in paper
    assert "60,965,224" in paper  # the shapes table's total, from the real models
    raw = (site / "paper" / "index.html").read_text()
    for figure in ("arch-paper.svg", "parity-paper.svg"):
        assert f'src="../assets/generated/{figure}"' in raw and (site / "assets" / "generated" / figure).is_file()
    assert "PASS: paper" in paper  # the parity report of a real run


def test_torchvision_page_pairs_torchvisions_own_layers_with_keras_block_by_block(site):
    """The PyTorch column is the installed torchvision's source, cut into the Keras file's blocks."""
    import inspect

    from torchvision.models import AlexNet

    page = _text(site / "torchvision" / "index.html")
    source = [line.strip() for line in inspect.getsource(AlexNet.__init__).splitlines()]
    joined = "\n".join(source)
    for block in ("block1", "block2", "block3", "classifier"):
        generated = (GENERATED / f"torchvision-torch-{block}.py").read_text()
        code = [line.strip() for line in generated.splitlines() if not line.startswith("#")]
        assert len(code) >= 3 and "\n".join(code) in joined, f"{block} is not a run of torchvision's lines"
        assert generated.strip() in page, f"torchvision's {block} is not on the page"
        keras = section(ROOT / "alexnet_keras/torchvision.py", block)
        assert keras.strip() in page and page.index(generated.strip()) < page.index(keras.strip())
    assert section(ROOT / "alexnet_torch/torchvision.py", "model").strip() in page


def test_pitfall_numbers_support_the_page(site):
    """Every measured mistake costs far more than fp32 rounding; every right way costs no more."""
    record = json.loads((GENERATED / "pitfalls.json").read_text())
    rows = record["rows"]
    assert {r["pitfall"] for r in rows} == {"lrn", "flatten", "same", "batchnorm", "size", "grouped", "nan"}
    for r in rows:
        if r["wrong_error"] is not None:
            assert r["wrong_error"] > 1e-4, r
        if r["right_error"] is not None:
            assert r["right_error"] < 1e-5, r
    page = _text(site / "pitfalls" / "index.html")
    assert "fc1 kernel = weight.T" in page and "mat1 and mat2 shapes cannot be multiplied" in page


def _chromium() -> str:
    for candidate in (os.environ.get("CHROMIUM"), "chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        if candidate and shutil.which(candidate):
            return shutil.which(candidate)
    pytest.fail("Chromium is needed for the browser check: `make install` installs Debian's chromium as root, "
                "or set CHROMIUM=/path/to/chrome")


# Appended to a copy of a built page: writes every side-by-side column's box into the DOM, which
# --dump-dom then prints. Inline scripts run after the page's stylesheets have loaded.
PROBE = """<script>
(function () {
  var grids = [].map.call(document.querySelectorAll('.side-by-side'), function (g) {
    return [].map.call(g.children, function (c) {
      var r = c.getBoundingClientRect();
      return {left: r.left, top: r.top, right: r.right, bottom: r.bottom, width: r.width};
    });
  });
  // A line longer than its column scrolls inside it: name the block by its title and longest line.
  var clipped = [].filter.call(document.querySelectorAll('.side-by-side pre > code, .side-by-side pre'), function (c) {
    return c.scrollWidth > c.clientWidth + 1;
  }).map(function (c) {
    var block = c.closest('.highlight'), title = block && block.querySelector('.filename');
    var longest = c.textContent.split('\\n').reduce(function (a, l) { return l.length > a.length ? l : a; }, '');
    return (title ? title.textContent : '?') + ': ' + longest.length + ' characters: ' + longest.trim();
  });
  var out = document.createElement('pre');
  out.id = 'probe-boxes';
  out.textContent = JSON.stringify({viewport: window.innerWidth, grids: grids, clipped: clipped,
                                    page_width: document.documentElement.scrollWidth});
  document.body.appendChild(out);
})();
</script>"""


def _boxes(page: Path, width: int, height: int = 1000) -> dict:
    probe = page.with_name("probe.html")
    probe.write_text(page.read_text().replace("</body>", PROBE + "</body>"))
    with tempfile.TemporaryDirectory() as profile:
        out = subprocess.run(
            [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--hide-scrollbars", f"--user-data-dir={profile}", f"--window-size={width},{height}",
             "--virtual-time-budget=5000", "--dump-dom", probe.as_uri()],
            capture_output=True, text=True, timeout=120,
        )
    found = re.search(r'<pre id="probe-boxes">(.*?)</pre>', out.stdout, re.S)
    assert found, f"Chromium printed no probe (exit {out.returncode}): {out.stderr[-2000:]}"
    return json.loads(html.unescape(found.group(1)))


@pytest.mark.parametrize("page", ["paper", "porting"])
def test_columns_side_by_side_when_wide_and_stacked_when_narrow(site, page):
    path = site / page / "index.html"
    wide, narrow = _boxes(path, 1600), _boxes(path, 600)
    assert wide["viewport"] == 1600 and narrow["viewport"] == 600
    assert len(wide["grids"]) >= 2 and len(wide["grids"]) == len(narrow["grids"])
    for torch_box, keras_box in (g for g in wide["grids"]):
        assert abs(torch_box["top"] - keras_box["top"]) < 1, (torch_box, keras_box)  # one row
        assert keras_box["left"] >= torch_box["right"], (torch_box, keras_box)  # PyTorch left, Keras right
        assert torch_box["width"] > 300 and abs(torch_box["width"] - keras_box["width"]) < 1  # equal columns
    for torch_box, keras_box in (g for g in narrow["grids"]):
        assert keras_box["top"] >= torch_box["bottom"], (torch_box, keras_box)  # stacked, PyTorch first
        assert abs(torch_box["left"] - keras_box["left"]) < 1


# Every page with two columns of code, found in the Markdown so that a new one is checked too.
SIDE_BY_SIDE = [p.stem for p in sorted(DOCS.glob("*.md")) if 'class="side-by-side"' in p.read_text()]


def _page(site: Path, name: str) -> Path:
    return site / "index.html" if name == "index" else site / name / "index.html"


@pytest.mark.parametrize("page", SIDE_BY_SIDE)
def test_side_by_side_fits_a_laptop_screen(site, page):
    """At 1366 px (a common laptop width) the two columns sit side by side inside the window, the
    page does not scroll sideways, and no code block scrolls inside its column: each line reads whole."""
    boxes = _boxes(_page(site, page), 1366, 768)
    assert boxes["viewport"] == 1366 and boxes["grids"]
    assert boxes["page_width"] <= boxes["viewport"], boxes["page_width"]
    for torch_box, keras_box in boxes["grids"]:
        assert abs(torch_box["top"] - keras_box["top"]) < 1 and keras_box["left"] >= torch_box["right"]
        assert torch_box["left"] >= 0 and keras_box["right"] <= boxes["viewport"], (torch_box, keras_box)
    assert not boxes["clipped"], (f"{page}: {len(boxes['clipped'])} code block(s) scroll inside their column at "
                                  "1366 px; shorten these lines in their source (formatting only):\n"
                                  + "\n".join(boxes["clipped"]))


def test_every_page_with_side_by_side_code_is_checked():
    assert {"paper", "cifar", "torchvision", "porting"} <= set(SIDE_BY_SIDE)
