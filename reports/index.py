"""One self-contained HTML page for a run: ``make report``
(``python -m reports.index --out build/reports``).

Reads every ``*.json`` report in the directory and writes ``index.html``:
per report its headline numbers (the scalar leaves of its JSON, the system
model's claims as a table beside the papers'), its plots embedded as
``data:`` URIs (``<name>.png`` and ``<name>_*.png``) and links to its
Markdown and JSON. Every number on the page is printed by :func:`fmt` from a
JSON value of the same directory; nothing is computed here.

This module has no ``run`` function, so ``reports.benches()`` (and
``make bench``) does not take it for a benchmark: it reads their output.
"""

from __future__ import annotations

import argparse
import base64
import html
import json
from pathlib import Path

__all__ = ["fmt", "headline", "build_page", "write_page", "main"]

MAX_LEAVES = 40     # scalar leaves shown per report
MAX_DEPTH = 3       # nesting levels walked
MAX_LIST = 4        # lists of up to this many scalars are shown inline


def fmt(value) -> str:
    """How a JSON number is printed on the page (4 significant digits)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return f"{value:.4g}"
    if value is None:
        return "null"
    return str(value)


def _scalar(v) -> bool:
    return v is None or isinstance(v, (bool, int, float))


def headline(data, *, limit: int = MAX_LEAVES) -> list[tuple[str, str]]:
    """(path, printed value) of the scalar leaves of a report, breadth first:
    top-level figures before nested ones; long lists and strings left out."""
    out: list[tuple[str, str]] = []
    level = [("", data)]
    for _ in range(MAX_DEPTH):
        nxt = []
        for path, node in level:
            if not isinstance(node, dict):
                continue
            for key, v in node.items():
                p = f"{path}.{key}" if path else str(key)
                if _scalar(v):
                    out.append((p, fmt(v)))
                elif isinstance(v, list) and 0 < len(v) <= MAX_LIST and all(
                        isinstance(x, (int, float)) and not isinstance(x, bool) for x in v):
                    out.append((p, "[" + ", ".join(fmt(x) for x in v) + "]"))
                elif isinstance(v, dict):
                    nxt.append((p, v))
                if len(out) >= limit:
                    return out
        level = nxt
    return out


def _claims(system: dict) -> list[tuple[str, str, str, str]]:
    """(paper, figure, paper's value, ours) rows from ``system.json``."""
    rows = []
    for paper in ("radit", "ditto", "orbis"):
        sec = system.get(paper)
        if not isinstance(sec, dict):
            continue
        ref = sec.get("paper", {})
        for fig in ("speedup", "speedup_video", "energy_saving", "energy_saving_video", "dram_overhead",
                    "plus_over_ditto", "plus_energy_saving", "reduction_ratio_vs_bsm"):
            if fig not in sec and fig not in ref:
                continue
            theirs = ref.get(fig if fig != "reduction_ratio_vs_bsm" else "reduction_ratio_vs_asymrnr")
            if paper == "orbis" and fig == "speedup":
                theirs = ref.get("speedup_over_base", theirs)
            if paper == "orbis" and fig == "energy_saving":
                theirs = ref.get("energy_saving_over_base", theirs)
            rows.append((paper, fig, _value(theirs), _value(sec.get(fig))))
    return rows


def _value(v) -> str:
    if isinstance(v, list):
        return " – ".join(fmt(x) for x in v)
    return fmt(v)


def _png(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def _table(head, rows) -> list[str]:
    out = ["<table>", "<tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in head) + "</tr>"]
    for r in rows:
        out.append("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>")
    out.append("</table>")
    return out


STYLE = ("body{font-family:sans-serif;max-width:70em;margin:auto;padding:1em}"
         "table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:.2em .5em;"
         "text-align:left}td:last-child{text-align:right}img{max-width:100%}section{margin-bottom:2em}")


def build_page(out_dir: Path) -> str:
    """The HTML text of the page for the reports in ``out_dir``."""
    out_dir = Path(out_dir)
    reports = sorted(p for p in out_dir.glob("*.json"))
    body = ["<!DOCTYPE html>", "<html lang=\"en\"><head><meta charset=\"utf-8\">",
            "<title>ditgen reports</title>", f"<style>{STYLE}</style></head><body>",
            "<h1>ditgen: reports of this run</h1>"]
    if not reports:
        body.append("<p>No JSON report here: run <code>make bench</code> first.</p>")
    body.append("<ul>" + "".join(f"<li><a href=\"#{html.escape(p.stem)}\">{html.escape(p.stem)}</a></li>"
                                 for p in reports) + "</ul>")
    for path in reports:
        name = path.stem
        try:
            data = json.loads(path.read_text())
        except ValueError:
            body += [f"<section id=\"{html.escape(name)}\"><h2>{html.escape(name)}</h2>",
                     "<p>unreadable JSON</p></section>"]
            continue
        links = [f"<a href=\"{html.escape(path.name)}\">JSON</a>"]
        md = out_dir / f"{name}.md"
        if md.exists():
            links.insert(0, f"<a href=\"{html.escape(md.name)}\">Markdown</a>")
        body += [f"<section id=\"{html.escape(name)}\"><h2>{html.escape(name)}</h2>",
                 "<p>" + " · ".join(links) + "</p>"]
        if name == "system" and isinstance(data, dict):
            body.append("<h3>Headline claims: the papers beside the system model</h3>")
            body += _table(("paper", "figure", "paper's value", "ours"), _claims(data))
        leaves = headline(data) if isinstance(data, dict) else []
        if leaves:
            body.append("<h3>Headline numbers</h3>")
            body += _table(("key", "value"), leaves)
        for png in sorted(set(out_dir.glob(f"{name}.png")) | set(out_dir.glob(f"{name}_*.png"))):
            body.append(f"<figure><img src=\"{_png(png)}\" alt=\"{html.escape(png.stem)}\">"
                        f"<figcaption>{html.escape(png.stem)}</figcaption></figure>")
        body.append("</section>")
    body.append("</body></html>")
    return "\n".join(body) + "\n"


def write_page(out_dir: Path) -> Path:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    page = out_dir / "index.html"
    page.write_text(build_page(out_dir))
    return page


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m reports.index", description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="build/reports", help="directory of the JSON reports (default: %(default)s)")
    args = ap.parse_args(argv)
    page = write_page(Path(args.out))
    print(f"wrote {page}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
