"""The score report: histograms with threshold lines, the funnel, percentiles, suggestions.

What a curator reads before choosing thresholds; rendered to PNG/Markdown files and to
Dagster metadata by the score_report asset.
"""

from __future__ import annotations

import base64
import io
import math
from dataclasses import dataclass

import numpy as np

from curation_assets.scores import PROBE, all_scores

PERCENTILES = (1, 5, 25, 50, 75, 95, 99)
REPORT_PAGE = "score_report.html"  # in <data_dir>/reports/, charts beside it; the review server's /report/


def reported_scores() -> dict[str, tuple[str, str, list[str]]]:
    """curated_videos column -> (score table, its column there, threshold keys drawn as lines),
    for every declared score: quality scores first, the stream's properties (PROBE) last."""
    out = {}
    for decl in sorted(all_scores(), key=lambda d: d.reads == PROBE):
        for curated, column in decl.value_columns.items():
            out[curated] = (decl.name, column, [b.key for b in decl.bounds if decl.bound_column(b) == curated])
    return out


def suggestable() -> dict[str, tuple[float | None, float | None]]:
    """curated column -> where a suggested threshold may lie, for the scores whose thresholds
    come from the distribution (not whole-number ones such as pixel sizes)."""
    return {curated: decl.suggest_range for decl in all_scores() for curated in decl.value_columns
            if any(b.kind is float for b in decl.bounds if decl.bound_column(b) == curated)}


@dataclass
class ScoreSummary:
    column: str
    count: int
    mean: float
    std: float
    percentiles: dict[int, float]


def summarize(column: str, values: np.ndarray) -> ScoreSummary:
    values = values[~np.isnan(values)]
    if not values.size:
        return ScoreSummary(column, 0, math.nan, math.nan, {p: math.nan for p in PERCENTILES})
    # every percentile from one partial sort (one call per percentile sorted ten million values each time)
    at = np.percentile(values, list(PERCENTILES))
    return ScoreSummary(column, int(values.size), float(values.mean()), float(values.std()),
                        {p: float(v) for p, v in zip(PERCENTILES, at)})


TINY_PROFILE = "tiny"
NOISE_NOTE = "tiny random-weight model: NOISE"
NOISE_COLOR, BAR_COLOR, LINE_COLOR = "#9A9A9A", "#4C72B0", "#C44E52"


def histogram_png(column: str, values: np.ndarray, thresholds: dict[str, float | None], title_note: str = "",
                  noise: int = 0) -> bytes:
    import matplotlib.pyplot as plt

    return _png(histogram_figure(column, values, thresholds, title_note, noise), plt)


def histogram_figure(column: str, values: np.ndarray, thresholds: dict[str, float | None], title_note: str = "",
                     noise: int = 0):
    """A histogram that stays readable whatever the values.

    The x axis follows the data: a threshold far outside it is named at the plot's edge
    instead of stretching the axis until the bars are thinner than a pixel; values all within
    a tiny range get a zoomed axis (no offset notation); no values at all says so. Threshold
    labels sit in head room above the tallest bar, inside the plot area.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator, ScalarFormatter

    values = values[~np.isnan(values)]
    bounds = [(k, float(b)) for k, b in thresholds.items() if b is not None]
    fig, ax = plt.subplots(figsize=(6.4, 3.4), dpi=100)
    # `noise`: how many of the values came from tiny random-weight models (bars turn grey)
    noise_line = "" if not noise else NOISE_NOTE if noise >= values.size else f"{noise} of {values.size} from a {NOISE_NOTE}"
    title = f"{column} (n={values.size}){title_note}" + (f"\n{noise_line}" if noise_line else "")
    ax.set_title(title, fontsize=10, color="#8B0000" if noise else "black")
    ax.set_ylabel("videos")
    if not values.size:
        ax.text(0.5, 0.55, "no values", transform=ax.transAxes, ha="center", va="center", fontsize=16, color="#666666")
        if bounds:
            ax.text(0.5, 0.35, ", ".join(f"{k}={b:g}" for k, b in bounds), transform=ax.transAxes, ha="center",
                    va="center", fontsize=8, color=LINE_COLOR)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_xlabel(column)
        fig.tight_layout()
        return fig

    lo, hi = float(values.min()), float(values.max())
    span = hi - lo
    magnitude = max(abs(lo), abs(hi))
    zoomed = span <= max(magnitude, 1e-12) * 0.01  # all values within 1% of their size
    single = span <= max(magnitude, 1.0) * 1e-12
    if single:  # one value: one bar of visible width centred on it
        half = max(magnitude * 0.001, 1e-3)
        bin_lo, bin_hi = lo - half, hi + half
    else:
        bin_lo, bin_hi = lo, hi
    pad = (bin_hi - bin_lo) * (1.5 if single else 0.08)
    view_lo, view_hi = bin_lo - pad, bin_hi + pad
    # thresholds near the data widen the view; far ones (beyond half the data's span) are named at the edge
    reach = (bin_hi - bin_lo) * 0.5
    near = [(k, b) for k, b in bounds if bin_lo - reach <= b <= bin_hi + reach]
    far = [(k, b) for k, b in bounds if (k, b) not in near]
    for _, b in near:
        view_lo, view_hi = min(view_lo, b - pad), max(view_hi, b + pad)
    bins = 1 if single else min(50, max(10, int(values.size ** 0.5) * 2))
    counts, _, _ = ax.hist(values, bins=bins, range=(bin_lo, bin_hi), color=NOISE_COLOR if noise else BAR_COLOR,
                           alpha=0.85)
    top = float(max(counts.max(), 1))
    labels = len(near) + len(far)
    ax.set_ylim(0, top * (1.12 + 0.16 * max(labels, 1)))  # head room: one label row per threshold
    ax.set_xlim(view_lo, view_hi)
    ax.xaxis.set_major_locator(MaxNLocator(6))
    formatter = ScalarFormatter(useOffset=False)
    formatter.set_scientific(False)
    ax.xaxis.set_major_formatter(formatter)
    style = {"color": LINE_COLOR, "fontsize": 8, "va": "center", "clip_on": True,
             "bbox": {"facecolor": "white", "edgecolor": "none", "alpha": 0.85, "pad": 1}}
    for row, (key, bound) in enumerate(sorted(near, key=lambda kb: kb[1])):
        ax.axvline(bound, color=LINE_COLOR, linestyle="--", linewidth=1.5)
        y = top * (1.1 + 0.16 * (row + 0.5))
        right_half = (bound - view_lo) / (view_hi - view_lo) > 0.55
        ax.text(bound, y, f"{key}={bound:g} " if right_half else f" {key}={bound:g}",
                ha="right" if right_half else "left", **style)
    for row, (key, bound) in enumerate(sorted(far, key=lambda kb: kb[1]), start=len(near)):
        y = top * (1.1 + 0.16 * (row + 0.5))
        # x in axes fraction (just inside the frame), y in data units
        if bound < view_lo:
            ax.text(0.01, y, f"\u2190 {key}={bound:g} (off the axis)", ha="left", transform=ax.get_yaxis_transform(),
                    **style)
        else:
            ax.text(0.99, y, f"{key}={bound:g} (off the axis) \u2192", ha="right", transform=ax.get_yaxis_transform(),
                    **style)
    xlabel = column
    if single:
        xlabel += f"  (all {values.size} values = {lo:.6g}: axis zoomed)"
    elif zoomed:
        xlabel += f"  (all values within {span:.3g}: axis zoomed)"
    ax.set_xlabel(xlabel)
    fig.tight_layout()
    return fig


def funnel_png(rows: list[tuple[str, int]], noise: bool = False) -> bytes:
    """Horizontal bars, one per funnel stage, each with its count; the axis leaves room for the
    longest bar's label so nothing is cut."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 0.42 * max(len(rows), 1) + 1.0), dpi=100)
    labels = [stage.strip() if not stage.startswith("  ") else "\u2514 " + stage.strip() for stage, _ in rows]
    counts = [n for _, n in rows]
    y = np.arange(len(rows))
    colors = ["#55A868" if s.startswith(("kept", "selected", "accelerated")) else
              "#C44E52" if "rejected" in s or s == "failed" else BAR_COLOR for s, _ in rows]
    ax.barh(y, counts, color=colors, alpha=0.85)
    top = max(counts, default=0) or 1
    for yi, n in zip(y, counts):
        ax.text(n + top * 0.01, yi, str(n), va="center", fontsize=8)
    ax.set_xlim(0, top * 1.15)
    ax.set_yticks(y, labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("videos")
    ax.set_title("funnel" + (f" ({NOISE_NOTE.split(':')[0]} scores involved)" if noise else ""), fontsize=10)
    return _png(fig, plt)


def _png(fig, plt) -> bytes:
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


def png_markdown(png: bytes, alt: str) -> str:
    return f"![{alt}](data:image/png;base64,{base64.b64encode(png).decode()})"


def percentile_table(summaries: list[ScoreSummary], noise: dict[str, int] | None = None) -> str:
    """Every percentile, one row per score; `noise` (score -> values from tiny models) adds a
    column saying which rows are noise."""
    noise = noise or {}
    head = "| score | n | mean | std | " + " | ".join(f"p{p}" for p in PERCENTILES) + " | from tiny models |"
    sep = "|---" * (5 + len(PERCENTILES)) + "|"
    rows = [
        f"| {s.column} | {s.count} | {s.mean:.4g} | {s.std:.4g} | " + " | ".join(f"{s.percentiles[p]:.4g}" for p in PERCENTILES)
        + f" | {_noise_cell(noise.get(s.column, 0), s.count)} |"
        for s in summaries
    ]
    return "\n".join([head, sep, *rows])


def _noise_cell(tiny: int, count: int) -> str:
    if not tiny:
        return "no"
    return "**all: noise**" if tiny >= count else f"**{tiny} of {count}: noise**"


def suggest_thresholds(summaries: dict[str, ScoreSummary], method: str = "sigma", keep_middle: float = 0.9,
                       skip: frozenset[str] | set[str] = frozenset()) -> dict:
    """Thresholds from the observed distribution, as a recipe's `thresholds` block.

    sigma: mean +/- 3 std (data-juicer recipes' rule); percentile: keep the middle `keep_middle`.
    Only the side a rule bounds is suggested (e.g. aesthetics gets a minimum only). Scores in
    `skip` (those from tiny random-weight models: noise) get no suggestion.
    """
    out = {}
    tail = (1 - keep_middle) / 2 * 100
    ranges = suggestable()
    for column, (_, _, keys) in reported_scores().items():
        s = summaries.get(column)
        if s is None or not s.count or column not in ranges or column in skip:
            continue
        if not s.std > 0:  # one value everywhere (e.g. no text in any clip) says nothing about where to cut
            continue
        if method == "sigma":
            low, high = s.mean - 3 * s.std, s.mean + 3 * s.std
        else:
            values = [s.percentiles[p] for p in PERCENTILES]
            low = float(np.interp(tail, PERCENTILES, values))
            high = float(np.interp(100 - tail, PERCENTILES, values))
        floor, ceiling = ranges[column]
        low = max(low, floor) if floor is not None else low
        high = min(high, ceiling) if ceiling is not None else high
        for key in keys:
            if key.endswith("_min"):
                out[key] = round(low, 4)
            elif key.endswith("_max"):
                out[key] = round(high, 4)
    return out


def tiny_banner(noise: dict[str, int], tiny_videos: int, videos: int) -> str:
    """The warning every output built on tiny-profile scores carries ('' when none is)."""
    columns = sorted(c for c, n in noise.items() if n)
    if not columns and not tiny_videos:
        return ""
    return (f"Built on tiny-profile scores: {tiny_videos} of {videos} videos were scored by the tiny "
            f"random-weight models (CURATION_MODEL_PROFILE=tiny); {', '.join(columns) or 'their learned scores'} "
            "are noise and no thresholds are suggested for them. Bring real weights (docs/models.md) "
            "before choosing thresholds from this report.")


def suggested_recipe_text(suggestion: dict, scores: int, method: str, banner: str, skipped: list[str]) -> str:
    import yaml

    lines = [f"# Suggested from {scores} scores ({method}); review before use:",
             "# curation-assets run --config suggested_recipe.yaml ..."]
    if banner:
        lines += ["#", *(f"# {chunk}" for chunk in _wrap(f"WARNING: {banner}", 88))]
    if skipped:
        lines.append(f"# No thresholds suggested for (tiny-model noise): {', '.join(skipped)}")
    return "\n".join(lines) + "\n" + yaml.safe_dump({"curated_videos": {"thresholds": suggestion}})


def _wrap(text: str, width: int) -> list[str]:
    import textwrap

    return textwrap.wrap(text, width)


def report_markdown(*, banner: str, funnel_rows: list[tuple[str, int]], percentiles: str, suggested_yaml: str,
                    charts: list[tuple[str, str]], image, location: str = "", gallery: str = "") -> str:
    """The whole report as one Markdown document; `image(name)` gives a chart's Markdown image
    (a file link on disk, an inline data URI in the UI), so both show the same document."""
    parts = ["# Score report"]
    if banner:
        parts.append(f"> **WARNING: {banner}**")
    if location:
        # in the document, not as a metadata path: a long path would widen the UI's metadata table
        parts.append(f"On disk: `{location}` (and as this page, `{REPORT_PAGE}` beside it), each chart as a PNG "
                     "beside it, and `suggested_recipe.yaml`.")
    if gallery:
        parts.append(gallery)
    parts += ["## Funnel", image("funnel"), funnel_markdown(funnel_rows),
              "## Score distribution", percentiles,
              "## Suggested thresholds", f"```yaml\n{suggested_yaml}```",
              "## Histograms"]
    for column, note in charts:
        parts.append(f"### {column}{note}\n\n{image(column)}")
    return "\n\n".join(parts) + "\n"


def report_summary_markdown(*, funnel_rows: list[tuple[str, int]], page_url: str) -> str:
    """The report's first screen for the asset page: where the whole report is, and the funnel.
    Short on purpose: under 1,000 characters Dagster shows Markdown inline in the metadata
    table; longer, behind "Show Markdown" in a dialog that focuses its Close button at the
    bottom, so a document taller than the window opens scrolled to its end. The whole report
    opens as a page instead (a new tab, at its top). No file path here: a long unbreakable
    path would widen the metadata table past its panel."""
    return (f"**The whole report** (every histogram with its thresholds, percentiles, suggested thresholds): "
            f"[{page_url}]({page_url})\n\n{funnel_markdown(funnel_rows)}\n")


REPORT_PAGE_STYLE = """
body { font: 15px/1.5 system-ui, sans-serif; max-width: 1100px; margin: 2em auto; padding: 0 1em; color: #1b1b1b; }
table { border-collapse: collapse; margin: 1em 0; } th, td { border: 1px solid #ccc; padding: 3px 8px; text-align: left; }
img { max-width: 100%; height: auto; } pre { background: #f5f5f5; padding: 0.8em; overflow-x: auto; }
blockquote { margin: 1em 0; padding: 0.5em 1em; background: #fff4e5; border-left: 4px solid #e8a33d; }
"""


def report_html(markdown: str, title: str = "Score report") -> str:
    """The report's Markdown (charts linked as PNG files beside it) as a standalone HTML page,
    served by the review server at /report/ and readable from disk as it is."""
    from html import escape

    from markdown_it import MarkdownIt

    body = MarkdownIt("commonmark", {"html": False}).enable("table").render(markdown)
    return (f"<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{escape(title)}</title>"
            f"<style>{REPORT_PAGE_STYLE}</style></head>\n<body>\n{body}</body></html>\n")


def funnel_markdown(rows: list[tuple[str, int]]) -> str:
    width = max((n for _, n in rows), default=1) or 1
    lines = ["| stage | videos | |", "|---|---|---|"]
    lines += [f"| {stage} | {n} | {'█' * max(1, round(20 * n / width)) if n else ''} |" for stage, n in rows]
    return "\n".join(lines)
