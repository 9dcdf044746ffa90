"""The status page (``GET /status`` asked for HTML): what a data scientist looks at first.

Stable and canary side by side: per InferenceService stream the live quality beside the model
card, quality over time (accuracy per time bucket of the window, inline SVG), and per feature the
reference distribution of the bundle against the stream's recent predictions (histograms over the
reference's range; categories as bars), with the latest drift verdict's p-value. No JavaScript,
no external assets: one self-contained document.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

import numpy as np

__all__ = ["render"]

BINS = 12
COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b")
STYLE = """body{font-family:system-ui,sans-serif;margin:1.5em;color:#222}table{border-collapse:collapse}
td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}th{background:#f4f4f4}
.bad{color:#b00;font-weight:bold}.grid{display:flex;flex-wrap:wrap;gap:14px}
.cell{border:1px solid #ddd;padding:6px}
h3{margin:0 0 4px 0;font-size:14px}.legend span{margin-right:12px}"""


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return escape(str(value))


def _quality_table(streams: Sequence[Mapping[str, Any]], card: Mapping[str, float]) -> str:
    names = ("accuracy", "precision", "recall", "f1", "roc_auc", "brier_score", "log_loss")
    head = "".join(
        f"<th>{escape(s['inferenceservice'])}<br><small>{escape(s['component'])}</small></th>"
        for s in streams
    )
    rows = []
    for name in names:
        reference = card.get(name)
        cells = []
        for s in streams:
            value = s["metrics"].get(name)
            low = (
                reference is not None
                and value is not None
                and name != "brier_score"
                and value < reference - 0.05
            )
            cells.append(f"<td class={'bad' if low else 'ok'}>{_fmt(value)}</td>")
        rows.append(f"<tr><th>{name}</th><td>{_fmt(reference)}</td>{''.join(cells)}</tr>")
    for key, label in (
        ("labelled", "labelled"),
        ("predictions", "predictions"),
        ("label_coverage", "label coverage"),
    ):
        rows.append(
            f"<tr><th>{label}</th><td></td>{''.join(f'<td>{_fmt(s.get(key))}</td>' for s in streams)}</tr>"
        )
    delays = "".join(f"<td>{_fmt((s.get('label_delay_seconds') or 0) / 3600, 1)} h</td>" for s in streams)
    rows.append(f"<tr><th>median label delay</th><td></td>{delays}</tr>")
    return f"<table><tr><th>metric</th><th>model card</th>{head}</tr>{''.join(rows)}</table>"


def _line_chart(series: Mapping[str, Sequence[tuple[float, float]]], reference: float | None) -> str:
    width, height, pad = 520, 160, 28
    points = [p for values in series.values() for p in values]
    if not points:
        return "<p>No labelled predictions in the window yet.</p>"
    t0, t1 = min(p[0] for p in points), max(p[0] for p in points)
    span = (t1 - t0) or 1.0

    def x(t: float) -> float:
        return pad + (width - 2 * pad) * (t - t0) / span

    def y(v: float) -> float:
        return height - pad - (height - 2 * pad) * v

    parts = [
        f'<svg width="{width}" height="{height}" role="img"><rect width="100%" height="100%" fill="white"/>'
    ]
    for v in (0.0, 0.5, 1.0):
        parts.append(f'<line x1="{pad}" x2="{width - pad}" y1="{y(v)}" y2="{y(v)}" stroke="#eee"/>')
        parts.append(f'<text x="2" y="{y(v) + 4}" font-size="10">{v:.1f}</text>')
    if reference is not None:
        parts.append(
            f'<line x1="{pad}" x2="{width - pad}" y1="{y(reference)}" y2="{y(reference)}" stroke="#999" '
            'stroke-dasharray="4 3"><title>model card</title></line>'
        )
    for colour, (name, values) in zip(COLOURS, series.items(), strict=False):
        path = " ".join(f"{x(t):.1f},{y(v):.1f}" for t, v in values)
        parts.append(
            f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{path}">'
            f"<title>{escape(name)}</title></polyline>"
        )
        parts.extend(f'<circle cx="{x(t):.1f}" cy="{y(v):.1f}" r="2.5" fill="{colour}"/>' for t, v in values)
    parts.append("</svg>")
    legend = "".join(
        f'<span style="color:{c}">■ {escape(n)}</span>' for c, n in zip(COLOURS, series, strict=False)
    )
    return f'<div class="legend">{legend}<span style="color:#999">- - model card</span></div>' + "".join(
        parts
    )


def _histogram(
    reference: np.ndarray, current: Mapping[str, np.ndarray], categories: Sequence[str] | None
) -> str:
    width, height = 240, 90
    if categories:
        edges = np.arange(len(categories) + 1) - 0.5
    else:
        low, high = np.percentile(reference, [1, 99]) if len(reference) else (0.0, 1.0)
        edges = np.linspace(low, high if high > low else low + 1, BINS + 1)
    groups = {"reference": reference, **current}
    shares = {}
    for name, values in groups.items():
        finite = values[np.isfinite(values)]
        counts = np.histogram(np.clip(finite, edges[0], edges[-1]), bins=edges)[0]
        shares[name] = counts / max(1, counts.sum())
    top = max(float(s.max()) for s in shares.values()) or 1.0
    bars = len(edges) - 1
    slot = width / bars
    inner = slot / (len(groups) + 0.5)
    parts = [f'<svg width="{width}" height="{height + 14}">']
    for g, (name, share) in enumerate(shares.items()):
        colour = "#bbb" if name == "reference" else COLOURS[(g - 1) % len(COLOURS)]
        for b, value in enumerate(share):
            h = height * float(value) / top
            parts.append(
                f'<rect x="{b * slot + g * inner:.1f}" y="{height - h:.1f}" '
                f'width="{inner:.1f}" height="{h:.1f}" '
                f'fill="{colour}"><title>{escape(name)}: {value:.0%}</title></rect>'
            )
    if categories:
        for b, cat in enumerate(categories):
            parts.append(
                f'<text x="{b * slot + 2:.1f}" y="{height + 12}" font-size="10">{escape(cat)}</text>'
            )
    else:
        parts.append(f'<text x="0" y="{height + 12}" font-size="10">{edges[0]:.3g}</text>')
        parts.append(f'<text x="{width - 40}" y="{height + 12}" font-size="10">{edges[-1]:.3g}</text>')
    parts.append("</svg>")
    return "".join(parts)


def render(
    *,
    names: Sequence[str],
    categories: Mapping[int, Sequence[str]],
    reference: np.ndarray,
    recent: Mapping[str, np.ndarray],
    quality: Mapping[str, Any],
    history: Mapping[str, Sequence[tuple[float, float]]],
    drift: Sequence[Mapping[str, Any]],
) -> str:
    """``recent``: stream name -> its recent rows; ``history``: stream name -> (time, accuracy)."""
    streams = list(quality.get("streams", []))
    card = quality.get("model_card", {})
    p_values: dict[str, dict[str, float]] = {}
    for d in drift:
        latest = d.get("features") or {}
        p_values[d["inferenceservice"]] = latest.get("p_values", {})
    cells = []
    for i, name in enumerate(names):
        current = {s: rows[:, i] for s, rows in recent.items() if rows.ndim == 2 and rows.shape[1] > i}
        notes = " ".join(
            f"{escape(s)} p={p_values[s][name]:.3g}" for s in current if name in p_values.get(s, {})
        )
        chart = _histogram(reference[:, i].astype(np.float64), current, categories.get(i))
        cells.append(
            f'<div class="cell"><h3>{escape(name)}</h3>{chart}<div><small>{notes}</small></div></div>'
        )
    legend = '<span style="color:#bbb">■ reference</span>' + "".join(
        f'<span style="color:{c}">■ {escape(s)}</span>' for c, s in zip(COLOURS, recent, strict=False)
    )
    window_days = float(quality.get("window_seconds", 0)) / 86400
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>model quality and drift</title>"
        f"<style>{STYLE}</style></head><body>"
        f"<h1>Model quality and drift</h1>"
        f"<h2>Live quality (labelled predictions of the last {window_days:g} days)</h2>"
        f"{_quality_table(streams, card) if streams else '<p>No predictions recorded yet.</p>'}"
        f"<h2>Accuracy over time</h2>{_line_chart(history, card.get('accuracy'))}"
        f"<h2>Features: reference vs recent predictions</h2><div class='legend'>{legend}</div>"
        f"<div class='grid'>{''.join(cells)}</div>"
        "<p><small>JSON: <a href='/status'>/status</a>, <a href='/quality'>/quality</a>; "
        "Prometheus: <a href='/metrics'>/metrics</a></small></p></body></html>"
    )
