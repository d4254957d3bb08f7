"""``make report``'s page: it parses, every image and link resolves, and every
number on it comes from a JSON report of the same directory."""

import base64
import json
import re
from html.parser import HTMLParser

import pytest

from reports import benches, index

NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:e[-+]?\d+)?")
PNG = b"\x89PNG\r\n\x1a\n"


class Page(HTMLParser):
    """Text outside <style>, image sources, link targets, tag balance."""

    VOID = {"meta", "img", "br", "link", "hr", "input"}

    def __init__(self):
        super().__init__()
        self.text, self.images, self.links, self.stack, self.ids = [], [], [], [], set()
        self.skip = 0

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if "id" in a:
            self.ids.add(a["id"])
        if tag == "img":
            self.images.append(a["src"])
        if tag == "a":
            self.links.append(a["href"])
        if tag == "style":
            self.skip += 1
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        assert self.stack and self.stack[-1] == tag, f"</{tag}> closes {self.stack[-1:]}"
        self.stack.pop()
        if tag == "style":
            self.skip -= 1

    def handle_data(self, data):
        if not self.skip:
            self.text.append(data)


def _tokens(obj, out):
    """Every way a number of the JSON may appear: printed by index.fmt, or
    as digits inside its keys and strings."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            out.update(NUMBER.findall(str(k)))
            _tokens(v, out)
    elif isinstance(obj, list):
        for v in obj:
            _tokens(v, out)
    elif isinstance(obj, str):
        out.update(NUMBER.findall(obj))
    elif isinstance(obj, (int, float)) and not isinstance(obj, bool):
        out.add(index.fmt(obj))
    return out


def _tiny_png(path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(1, 1))
    ax.plot([0, 1])
    fig.savefig(path, dpi=20)
    plt.close(fig)


@pytest.fixture
def run_dir(tmp_path):
    (tmp_path / "alpha.json").write_text(json.dumps(
        {"speedup": 1.23456, "cycles": 98765, "ok": True, "ratios": [0.25, 0.5],
         "nested": {"energy_saving": 0.1774, "deeper": {"x": -3.5e-05}}, "long": [1000.5 + i for i in range(50)],
         "label": "run with 7 images"}))
    (tmp_path / "alpha.md").write_text("# alpha\n")
    _tiny_png(tmp_path / "alpha.png")
    _tiny_png(tmp_path / "alpha_extra.png")
    (tmp_path / "system.json").write_text(json.dumps({
        "radit": {"speedup": 1.31, "energy_saving": 0.25, "dram_overhead": 0.0123,
                  "paper": {"speedup": 1.8, "energy_saving": 0.41, "dram_overhead": 0.015}},
        "orbis": {"speedup": 2.2, "energy_saving": 0.5, "dram_overhead": None,
                  "reason": {"dram_overhead": "none given"},
                  "paper": {"speedup": 4.5, "speedup_over_base": [1.21, 1.67], "energy_saving": 0.793}}}))
    return tmp_path


def test_page_parses_and_resolves(run_dir):
    page = index.write_page(run_dir)
    p = Page()
    p.feed(page.read_text())
    p.close()
    assert p.stack == []
    assert len(p.images) == 2
    for src in p.images:
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1]).startswith(PNG)
    assert {"alpha.md", "alpha.json", "system.json"} <= set(p.links)
    for href in p.links:
        if href.startswith("#"):
            assert href[1:] in p.ids
        else:
            assert (run_dir / href).is_file(), href


def stray_numbers(page: str, run_dir) -> tuple[list, list]:
    """(numbers on the page, those no JSON report in ``run_dir`` holds)."""
    p = Page()
    p.feed(page)
    allowed = set()
    for path in run_dir.glob("*.json"):
        _tokens(json.loads(path.read_text()), allowed)
    found = NUMBER.findall(" ".join(p.text))
    return found, [t for t in found if t not in allowed]


def test_every_number_on_the_page_is_from_the_json(run_dir):
    page = index.build_page(run_dir)
    found, stray = stray_numbers(page, run_dir)
    assert found, "the page shows no numbers"
    assert not stray, f"numbers on the page that no JSON report holds: {stray}"
    for shown in ("1.235", "98765", "0.1774", "-3.5e-05", "1.21 – 1.67", "4.5", "[0.25, 0.5]"):
        assert shown in page


def test_the_number_check_can_fail(run_dir):
    page = index.build_page(run_dir).replace("</body>", "<p>cycles 12345</p></body>")
    assert stray_numbers(page, run_dir)[1] == ["12345"]


def test_index_is_not_a_benchmark():
    assert "index" not in benches()
    assert "system" in benches()


def test_empty_directory(tmp_path):
    p = Page()
    p.feed(index.build_page(tmp_path))
    assert "make bench" in " ".join(p.text)
