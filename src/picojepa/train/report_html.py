"""report.html: the run's report as one page a person looks at, drawn from report.json's content
and the pictures `report_page` made. One self-contained file: pictures inlined as data: URIs,
no script, no style sheet or font from elsewhere; it opens from disk in any browser."""
from __future__ import annotations

import html
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from picojepa.core.roster import GENERAL

from .answer import column
from .guards import INIT_PROBE, SHUFFLED, warnings
from .motion_baseline import BASELINE

STYLE = """body{font:14px/1.45 system-ui,sans-serif;margin:1.5em auto;max-width:1100px;color:#222;padding:0 1em}
h1{font-size:1.5em}h2{border-bottom:1px solid #ccc;margin-top:2em}table{border-collapse:collapse;margin:.5em 0}
td,th{border:1px solid #ddd;padding:3px 8px;text-align:right}th{background:#f4f4f4}td.l,th.l{text-align:left}
.warn{background:#fff3cd;border:1px solid #e0c060;padding:.5em 1em;margin:.5em 0}
.tiles{display:flex;flex-wrap:wrap;gap:10px}.tile{border:1px solid #ddd;padding:5px;width:150px;font-size:12px}
.tile img{width:72px;height:72px;image-rendering:pixelated}.tile.wide{width:160px}
.bad{color:#b00}.ok{color:#070}.cov{vertical-align:middle}figure{margin:1em 0}figure img{max-width:100%}
a.cell{display:block;color:inherit;text-decoration:none}code{font-size:12px}"""
YARDSTICKS = (("random_init_probe", "linear probe on a randomly initialised encoder"),
              (INIT_PROBE, "the same probe on the encoder pre-training started from (the foundation), frozen"),
              (BASELINE, "frame differencing (motion-energy numbers, logistic regression)"),
              (SHUFFLED, "the same head trained on shuffled labels (should be at chance)"))
BAR = 240  # width of a sampling-coverage bar, pixels


@dataclass
class Tile:
    """A clip shown on the page: where it is in the held-out list (None: unlabelled), its true
    class ('' when unlabelled), the answer and its confidence, its pictures (data: URIs)."""

    index: int | None
    path: str
    label: str
    answer: str
    confidence: float
    gif: str | None = None
    overlay: str | None = None  # the occlusion map drawn over the frames
    note: str = ""


@dataclass
class Page:
    """What report.html shows beside report.json's content."""

    report: dict
    wrong: list[Tile] = field(default_factory=list)
    wrong_about: str = ""  # how many clips were wrong, and which of them are shown
    right: list[Tile] = field(default_factory=list)
    label_next: list[Tile] = field(default_factory=list)
    label_next_note: str = ""
    plots: dict[str, str] = field(default_factory=dict)  # name -> data: URI
    root: Path = Path(".")  # the page's folder: links to the videos are relative to it
    coverage: list[tuple[str, int, list[int]]] = field(default_factory=list)  # held-out video, its frames, the clip's


def _esc(s) -> str:
    return html.escape(str(s), quote=True)


def _md(line: str) -> str:
    """A report paragraph's Markdown (bold, code) as HTML."""
    s = _esc(line)
    return re.sub(r"`(.+?)`", r"<code>\1</code>", re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", s))


def _num(key: str, v: float | None) -> str:
    """A figure of report.json, with its key and exact value for a reader (or a test) to check."""
    if v is None:
        return f'<td data-key="{key}">–</td>'
    return f'<td data-key="{key}" data-value="{v!r}">{v:.2f}</td>'


def _headline(r: dict) -> list[str]:
    acc, a = r["accuracy"], r.get("answer") or {}
    chosen = a.get("chosen", "majority")
    col = column(chosen)
    rows = [f'<tr><td class="l">the bundle\'s answer: <strong data-key="answer.chosen">{_esc(chosen)}</strong> '
            f"(chosen on validation videos)</td>{_num(f'accuracy.{col}', acc.get(col))}</tr>"]
    if col != GENERAL:
        rows.append(f'<tr><td class="l">general model alone</td>{_num(f"accuracy.{GENERAL}", acc.get(GENERAL))}</tr>')
    rows += [f'<tr><td class="l">{_esc(text)}</td>{_num(f"accuracy.{k}", acc.get(k))}</tr>'
             for k, text in YARDSTICKS if k in acc]
    out = ["<h2>Headline</h2>", *(f'<p class="warn">{_md(w)}</p>' for w in warnings(r) if w),
           f"<p>{r['held_out_videos']} held-out videos, {len(r['classes'])} classes; accuracy is the mean of the "
           "per-class accuracies, in percent (report.json's <code>accuracy</code>).</p>",
           '<table id="headline"><tr><th class="l">model</th><th>held-out accuracy</th></tr>', *rows, "</table>"]
    return out


def precision_recall(m: np.ndarray) -> tuple[list[float | None], list[float | None]]:
    """Per class, from a confusion matrix (rows true, columns answered): precision and recall in percent."""
    answered, true = m.sum(0), m.sum(1)
    d = np.diag(m)
    return ([float(d[c] / answered[c] * 100) if answered[c] else None for c in range(len(m))],
            [float(d[c] / true[c] * 100) if true[c] else None for c in range(len(m))])


def _classes(r: dict, col: str) -> list[str]:
    cls, m = r["classes"], np.asarray(r["confusion"][col])
    prec, rec = precision_recall(m)
    out = [f"<h2>Per class: the answer (<code>{_esc(col)}</code>)</h2>",
           '<table id="per-class"><tr><th class="l">class</th><th>held-out videos</th><th>precision</th>'
           "<th>recall</th></tr>"]
    for c, name in enumerate(cls):
        out.append(f'<tr><td class="l">{_esc(name)}</td><td>{int(m[c].sum())}</td>'
                   f"{_num(f'precision.{c}', prec[c])}{_num(f'recall.{c}', rec[c])}</tr>")
    out += ["</table>", "<h3>Confusion matrix</h3><p>Rows: true class; columns: the answer. A cell links to "
            "its clips; the deeper the colour, the larger its share of the row.</p>", '<table id="confusion">',
            '<tr><th class="l">true \\ answer</th>' + "".join(f"<th>{_esc(n)}</th>" for n in cls) + "</tr>"]
    for i, name in enumerate(cls):
        row = max(int(m[i].sum()), 1)
        cells = []
        for j in range(len(cls)):
            share = m[i, j] / row
            hue = 130 if i == j else 0
            bg = f"hsl({hue},60%,{100 - 45 * share:.0f}%)"
            body = f'<a class="cell" href="#cell-{i}-{j}">{m[i, j]}</a>' if m[i, j] else "0"
            cells.append(f'<td style="background:{bg}" data-cell="{i}-{j}">{body}</td>')
        out.append(f'<tr><th class="l">{_esc(name)}</th>' + "".join(cells) + "</tr>")
    return out + ["</table>"]


def _href(path: str, root: Path) -> str:
    """A link to a video file, relative to the page (which opens from disk, beside its run)."""
    return _esc(Path(os.path.relpath(Path(path).absolute(), Path(root).absolute())).as_posix())


def _cell_lists(r: dict, col: str, shown: set[int], root: Path) -> list[str]:
    """Each non-empty confusion cell's clips, a link to the clip's picture where the page has one."""
    pred, y, paths, conf = (r["predictions"][col], r["predictions"]["labels"], r["predictions"]["paths"],
                            r["predictions"].get("answer_confidence"))
    cls, out = r["classes"], ["<h2>The clips of each cell</h2>"]
    for i in range(len(cls)):
        for j in range(len(cls)):
            idx = [k for k in range(len(y)) if y[k] == i and pred[k] == j]
            if not idx:
                continue
            out.append(f'<h4 id="cell-{i}-{j}">true {_esc(cls[i])}, answered {_esc(cls[j])}: {len(idx)}</h4><ul>')
            for k in idx:
                name = _esc(Path(paths[k]).name)
                link = f'<a href="#clip-{k}">{name}</a>' if k in shown else name
                c = f" ({conf[k]:.2f})" if conf else ""
                out.append(f'<li>{link}{c} <a href="{_href(paths[k], root)}"><code>{_esc(paths[k])}</code></a></li>')
            out.append("</ul>")
    return out


def _tile(t: Tile, root: Path) -> str:
    anchor = f' id="clip-{t.index}"' if t.index is not None else ""
    wrong = t.label and t.label != t.answer
    pics = "".join(f'<img src="{u}" alt="{alt}">' for u, alt in ((t.gif, "clip"), (t.overlay, "occlusion map")) if u)
    truth = f"true <strong>{_esc(t.label)}</strong><br>" if t.label else ""
    return (f'<div class="tile{" wide" if t.overlay else ""}"{anchor} data-path="{_esc(t.path)}">{pics}<br>{truth}'
            f'answered <strong class="{"bad" if wrong else "ok"}">{_esc(t.answer)}</strong> ({t.confidence:.2f})'
            f'<br><a class="clip" href="{_href(t.path, root)}" title="{_esc(t.path)}">{_esc(Path(t.path).name)}</a>'
            + (f"<br>{_esc(t.note)}" if t.note else "") + "</div>")


def _tiles(title: str, about: str, tiles: list[Tile], section: str, root: Path) -> list[str]:
    body = [f'<div class="tiles">{"".join(_tile(t, root) for t in tiles)}</div>'] if tiles else ["<p>None.</p>"]
    return [f'<h2 id="{section}">{_esc(title)}</h2>', f"<p>{about}</p>", *body]


def _coverage(page: Page, sampling: str) -> list[str]:
    how = ("one frame in each of as many equal segments of the whole video ('spread')" if sampling == "spread"
           else "a window of consecutive frames in the middle of the video ('window')")
    out = ["<h2 id=\"sampling\">What the clip covers of each video</h2>",
           f"<p>The answer reads one clip per video: {how}. Each bar is a held-out video, from its first frame "
           "to its last; the marks are the frames the clip takes.</p>", '<table id="coverage">',
           '<tr><th class="l">video</th><th>frames</th><th>span of the video</th><th class="l">frames read</th></tr>']
    for path, n, idx in page.coverage:
        span = (max(idx) - min(idx) + 1) / n * 100 if n else 0.0
        marks = "".join(f'<rect x="{i / max(n, 1) * BAR:.1f}" y="0" width="{max(BAR / max(n, 1), 1.5):.1f}" '
                        'height="10" fill="#2a6"/>' for i in sorted(set(idx)))
        svg = (f'<svg class="cov" width="{BAR}" height="10"><rect width="{BAR}" height="10" fill="#eee"/>'
               f"{marks}</svg>")
        out.append(f'<tr><td class="l">{_esc(Path(path).name)}</td><td>{n}</td><td>{span:.0f} %</td>'
                   f'<td class="l">{svg}</td></tr>')
    return out + ["</table>"]


def render(page: Page) -> str:
    """The page's HTML."""
    r = page.report
    col = column((r.get("answer") or {}).get("chosen", "majority"))
    shown = {t.index for t in page.wrong + page.right if t.index is not None}
    parts = [f"<h1>pico-JEPA run report: recipe <code>{_esc(r['recipe'])}</code></h1>",
             '<p>Sections: <a href="#wrong">clips it got wrong</a> · <a href="#right">clips it got right</a> · '
             '<a href="#label-next">label next</a> · <a href="#plots">plots</a> · '
             '<a href="#sampling">sampling</a>. The numbers are report.json\'s; report.md has every table.</p>',
             *_headline(r), *_classes(r, col),
             *_tiles("Clips it got wrong", f"{page.wrong_about} Left: the clip as the model reads it; right "
                     "(where there is one): its occlusion map, the blocks of frames and places without which the "
                     "answer lost most of its probability, in red.", page.wrong, "wrong", page.root),
             *_tiles("Clips it got right", "A few per class, most confident first.", page.right, "right", page.root),
             *_tiles("Which clips to label next", page.label_next_note, page.label_next, "label-next", page.root),
             *_cell_lists(r, col, shown, page.root), '<h2 id="plots">Plots</h2>',
             *(f'<figure><img src="{u}" alt="{_esc(n)}"><figcaption>{_esc(n)}</figcaption></figure>'
               for n, u in page.plots.items()),
             *_coverage(page, (r.get("recipe_config") or {}).get("clip", {}).get("sampling", "window"))]
    return _document(f"pico-JEPA run report: {r['recipe']}", parts)


def _document(title: str, parts: list[str]) -> str:
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{_esc(title)}</title>'
            f"<style>{STYLE}</style></head><body>\n" + "\n".join(parts) + "\n</body></html>\n")


def render_repeats(summary: dict, runs: list[str]) -> str:
    """The page of a recipe run several times (seeds or folds, each run's folder in `runs`):
    the headline as mean ± sd over the runs (report.json's `accuracy_mean`, `accuracy_sd`) and a
    link to each run's own page."""
    mean, sd, per = summary["accuracy_mean"], summary["accuracy_sd"], summary.get("per_run") or {
        f"seed-{k}": v for k, v in (summary.get("per_seed") or {}).items()}
    chosen = (summary.get("answer") or {}).get("chosen", "majority")
    keys = list(dict.fromkeys(k for k in (column(chosen), GENERAL, *(k for k, _ in YARDSTICKS)) if k in mean))
    head = "".join(f'<th><a href="{_esc(n)}/report.html">{_esc(n)}</a></th>' for n in runs)
    rows = [f'<tr><td class="l">{_esc(k)}</td>{_num(f"accuracy.{k}", mean[k])}<td>± {sd.get(k, 0.0):.2f}</td>'
            + "".join(f"<td>{per.get(n, {}).get(k, float('nan')):.2f}</td>" for n in runs) + "</tr>" for k in keys]
    lines = warnings({**summary, "accuracy": mean, "pretrain": {"history": [{"target_rank": summary.get(
        "target_rank_mean")}]}})
    body = [f"<h1>pico-JEPA run report: recipe <code>{_esc(summary['recipe'])}</code>, {len(runs)} runs</h1>",
            *(f'<p class="warn">{_md(w)}</p>' for w in lines if w),
            f"<p>Mean ± sample sd over the runs of the mean per-class accuracy, in percent (report.json's "
            f"<code>accuracy_mean</code>, <code>accuracy_sd</code>); the bundle's answer is "
            f'<strong data-key="answer.chosen">{_esc(chosen)}</strong> (column <code>{_esc(column(chosen))}</code>) '
            "in the first run. Each run's page shows its clips.</p>", '<table id="headline"><tr><th class="l">model</th><th>mean</th><th>sd</th>' + head + "</tr>",
            *rows, "</table>"]
    return _document(f"pico-JEPA runs: {summary['recipe']}", body)
