"""The drift check as one self-contained HTML page: verdict, test table, plots, topic examples.

Plots are drawn with matplotlib (Agg backend, nothing opens a window) and inlined as SVG, so the
file can be mailed, archived as an MLflow artefact or opened offline. Every text from the log is
HTML-escaped: queries are user input.
"""

from __future__ import annotations

import html
import io
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from genai_factory.mlops.drift import DriftResult

_STYLE = """
body{font-family:system-ui,sans-serif;margin:2rem auto;max-width:1100px;color:#222}
h1{margin-bottom:.2rem} .verdict{font-size:1.3rem;padding:.6rem 1rem;border-radius:6px}
.drift{background:#fde2e1;color:#8a1c14} .stable{background:#e3f4e5;color:#1d5e26}
table{border-collapse:collapse;width:100%;margin:1rem 0} td,th{border-bottom:1px solid #ddd;
padding:.35rem .6rem;text-align:left;font-size:.92rem} tr.drifted td{background:#fff3f2}
.plots{display:grid;grid-template-columns:1fr 1fr;gap:1rem} figure{margin:0}
figcaption{font-size:.85rem;color:#555} .muted{color:#777}
"""
_REFERENCE, _CURRENT = "#4c72b0", "#dd8452"


def _svg(draw: Callable[[Any], None]) -> str:
    """One figure drawn by ``draw(axes)``, as inline SVG markup."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    figure = Figure(figsize=(5.2, 3.0), dpi=100)
    axes = figure.subplots()
    draw(axes)
    figure.tight_layout()
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg")
    text = buffer.getvalue()
    return text[text.index("<svg") :]


def _histograms(reference: Sequence[float], current: Sequence[float], xlabel: str) -> str:
    def draw(axes: Any) -> None:
        low = min(min(reference), min(current))
        high = max(max(reference), max(current))
        bins = 30 if high > low else 1
        kwargs = {"bins": bins, "range": (low, high if high > low else low + 1), "density": True}
        axes.hist(reference, alpha=0.55, color=_REFERENCE, label="reference", **kwargs)
        axes.hist(current, alpha=0.55, color=_CURRENT, label="current", **kwargs)
        axes.set_xlabel(xlabel)
        axes.set_ylabel("density")
        axes.legend()

    return _svg(draw)


def _null_distribution(null: Sequence[float], observed: float) -> str:
    def draw(axes: Any) -> None:
        axes.hist(null, bins=30, color="#999999", label="permutations")
        axes.axvline(observed, color=_CURRENT, linewidth=2, label="observed")
        axes.set_xlabel("MMD²")
        axes.legend()

    return _svg(draw)


def _paired_bars(
    labels: Sequence[str], reference: Sequence[float], current: Sequence[float]
) -> str:
    def draw(axes: Any) -> None:
        positions = range(len(labels))
        axes.bar([p - 0.2 for p in positions], reference, 0.4, color=_REFERENCE, label="reference")
        axes.bar([p + 0.2 for p in positions], current, 0.4, color=_CURRENT, label="current")
        axes.set_xticks(list(positions), labels, rotation=25, ha="right", fontsize=8)
        axes.set_ylabel("share")
        axes.legend()

    return _svg(draw)


def _figure(svg: str, caption: str) -> str:
    return f"<figure>{svg}<figcaption>{html.escape(caption)}</figcaption></figure>"


def _format(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, dict):
        return ", ".join(f"{k} {_format(v)}" for k, v in value.items())
    if isinstance(value, list):
        return "[" + ", ".join(_format(v) for v in value) + "]"
    return html.escape(str(value))


def _test_rows(result: DriftResult) -> str:
    rows = []
    for name, test in result.tests.items():
        css = ' class="drifted"' if test.drifted else ""
        rows.append(
            f"<tr{css}><td>{html.escape(name)}</td><td>{test.statistic:.4g}</td>"
            f"<td>{test.p_value:.3g}</td><td>{test.p_adjusted:.3g}</td>"
            f"<td>{'yes' if test.drifted else 'no'}</td><td>{_format(test.reference)}</td>"
            f"<td>{_format(test.current)}</td></tr>"
        )
    for name in result.insufficient:
        rows.append(
            f'<tr><td>{html.escape(name)}</td><td colspan="6" class="muted">'
            "not enough data in a window</td></tr>"
        )
    return "".join(rows)


def _plots(result: DriftResult) -> list[str]:
    plots = result.plots
    figures = []
    if "prompt_length" in plots:
        ref, cur = plots["prompt_length"]
        figures.append(_figure(_histograms(ref, cur, "characters"), "Prompt length"))
    if "mmd_null" in plots and "query_embedding" in result.tests:
        observed = result.tests["query_embedding"].statistic
        figures.append(
            _figure(
                _null_distribution(list(plots["mmd_null"]), observed),
                "Query embeddings: observed MMD² against its permutation distribution",
            )
        )
    if plots.get("topics"):
        topics = plots["topics"]
        labels = [f"topic {t['topic']}" for t in topics]
        figures.append(
            _figure(
                _paired_bars(
                    labels, [t["reference"] for t in topics], [t["current"] for t in topics]
                ),
                "Topic mix (k-means clusters of the query embeddings)",
            )
        )
    if plots.get("rates"):
        names = list(plots["rates"])
        figures.append(
            _figure(
                _paired_bars(
                    [n.removesuffix("_rate") for n in names],
                    [plots["rates"][n][0] for n in names],
                    [plots["rates"][n][1] for n in names],
                ),
                "Rates (blocks and errors per request; the others per answered request)",
            )
        )
    if "retrieval_score" in plots:
        ref, cur = plots["retrieval_score"]
        figures.append(_figure(_histograms(ref, cur, "best retrieval score"), "Retrieval score"))
    return figures


def _topic_rows(result: DriftResult) -> str:
    rows = []
    for topic in result.plots.get("topics") or []:
        examples = "<br>".join(html.escape(e) for e in topic["examples"])
        change = topic["current"] - topic["reference"]
        rows.append(
            f"<tr><td>{topic['topic']}</td><td>{topic['reference']:.1%}</td>"
            f"<td>{topic['current']:.1%}</td><td>{change:+.1%}</td><td>{examples}</td></tr>"
        )
    return "".join(rows)


def render_html(result: DriftResult) -> str:
    """The report page of one drift check."""
    verdict = "Drift detected" if result.drift else "No drift detected"
    drifted = [name for name, test in result.tests.items() if test.drifted]
    detail = f": {', '.join(drifted)}" if drifted else ""
    windows = (
        f"reference {result.reference.start:%Y-%m-%d %H:%M} → {result.reference.end:%Y-%m-%d %H:%M}"
        f" ({result.samples['reference']} requests) · current "
        f"{result.current.start:%Y-%m-%d %H:%M} → {result.current.end:%Y-%m-%d %H:%M}"
        f" ({result.samples['current']} requests) · UTC"
    )
    topics = _topic_rows(result)
    topic_table = (
        "<h2>Topics</h2><table><tr><th>topic</th><th>reference</th><th>current</th>"
        f"<th>change</th><th>queries nearest the centre</th></tr>{topics}</table>"
        if topics
        else ""
    )
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>Drift report</title><style>{_STYLE}</style></head><body>"
        "<h1>Drift report</h1>"
        f"<p class='muted'>{html.escape(windows)}</p>"
        f"<p class='verdict {'drift' if result.drift else 'stable'}'>"
        f"{verdict}{html.escape(detail)}</p>"
        f"<p class='muted'>Holm-corrected p-values, significance level {result.alpha:g}.</p>"
        "<h2>Tests</h2><table><tr><th>test</th><th>statistic</th><th>p</th><th>p (Holm)</th>"
        f"<th>drift</th><th>reference</th><th>current</th></tr>{_test_rows(result)}</table>"
        f"<h2>Plots</h2><div class='plots'>{''.join(_plots(result))}</div>"
        f"{topic_table}</body></html>"
    )


def write_report(result: DriftResult, path: Path) -> Path:
    """Write the report to ``path`` (parents created); returns the path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_html(result), encoding="utf-8")
    return path
