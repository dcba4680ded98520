"""Charts (one PNG each) and one self-contained HTML page of the KPIs (``report`` extra).

Only this module imports matplotlib (an import-linter contract keeps it out of the
firmware's roles and engine). Figures are drawn on matplotlib's ``Figure`` with the
Agg canvas (no pyplot state, no display); labels are in the branch's languages with
the WenQuanYi Micro Hei font for CJK; the HTML embeds every PNG as a ``data:`` URI
and loads nothing from the network.

    charts = render_charts(kpis, cfg)        # {"arrivals_by_hour": b"\\x89PNG...", ...}
    write_html(kpis, cfg, charts, Path("out/report.html"))
"""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path
from typing import Any

from tessera.config import BranchConfig
from tessera.errors import TesseraError

CJK_FONT = Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc")  # fonts-wqy-microhei
EXTRA = "report"

# chart titles and axis labels per language (the branch's languages, joined with " / ")
LABELS: dict[str, dict[str, str]] = {
    "arrivals_by_hour": {"en": "Arrivals and served per hour", "zh": "每小时到达与服务"},
    "wait_by_service": {"en": "Waiting time per service", "zh": "各业务等候时间"},
    "satisfaction_by_counter": {"en": "Satisfaction by counter", "zh": "各窗口满意度"},
    "satisfaction_by_staff": {"en": "Satisfaction by staff", "zh": "各员工满意度"},
    "service_level_by_day": {"en": "Service level per day", "zh": "每日服务水平"},
    "hour": {"en": "hour", "zh": "时段"}, "tickets": {"en": "tickets", "zh": "票数"},
    "arrived": {"en": "arrived", "zh": "到达"}, "served": {"en": "served", "zh": "已服务"},
    "counters": {"en": "counters serving", "zh": "服务窗口数"},
    "wait_min": {"en": "wait (min)", "zh": "等候(分钟)"},
    "sla": {"en": "SLA target", "zh": "目标"},
    "satisfied_pct": {"en": "satisfied %", "zh": "满意率 %"},
    "sla_pct": {"en": "% called within target", "zh": "达标率 %"},
}


class ChartsUnavailable(TesseraError, RuntimeError):
    """matplotlib is not installed: the ``report`` extra is missing."""


def _mpl() -> Any:
    try:
        import matplotlib
    except ImportError:
        raise ChartsUnavailable(
            f"charts need matplotlib: install the '{EXTRA}' extra "
            f"(pip install 'tessera[{EXTRA}]'); --format csv,json works without it") from None
    matplotlib.use("Agg", force=False)
    from matplotlib import font_manager

    if CJK_FONT.exists() and "WenQuanYi Micro Hei" not in {
            f.name for f in font_manager.fontManager.ttflist}:
        font_manager.fontManager.addfont(str(CJK_FONT))
    return matplotlib


def label(key: str, cfg: BranchConfig) -> str:
    texts = LABELS[key]
    seen = [texts[lang] for lang in cfg.branch.languages if lang in texts]
    return " / ".join(dict.fromkeys(seen)) or texts["en"]


def _service_name(cfg: BranchConfig, sid: str) -> str:
    try:
        return cfg.service(sid).name(cfg.branch.languages[0])
    except KeyError:
        return sid


def _figure(mpl: Any, width: float = 8.0, height: float = 4.0) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    with mpl.rc_context({"font.family": ["WenQuanYi Micro Hei", "DejaVu Sans"],
                         "axes.unicode_minus": False}):
        fig = Figure(figsize=(width, height), dpi=100)
        FigureCanvasAgg(fig)
    return fig


def _png(mpl: Any, fig: Any) -> bytes:
    buf = io.BytesIO()
    with mpl.rc_context({"font.family": ["WenQuanYi Micro Hei", "DejaVu Sans"]}):
        fig.tight_layout()
        fig.savefig(buf, format="png", metadata={"Software": None})
    return buf.getvalue()


def render_charts(kpis: dict[str, Any], cfg: BranchConfig) -> dict[str, bytes]:
    """Every chart of ``kpis`` as PNG bytes, by name (ChartsUnavailable without matplotlib)."""
    mpl = _mpl()
    with mpl.rc_context({"font.family": ["WenQuanYi Micro Hei", "DejaVu Sans"],
                         "axes.unicode_minus": False}):
        return {"arrivals_by_hour": _hours(mpl, kpis, cfg),
                "wait_by_service": _waits(mpl, kpis, cfg),
                "satisfaction_by_counter": _satisfaction(mpl, kpis, cfg, "counters"),
                "satisfaction_by_staff": _satisfaction(mpl, kpis, cfg, "staff"),
                "service_level_by_day": _days(mpl, kpis, cfg)}


def _hours(mpl: Any, k: dict[str, Any], cfg: BranchConfig) -> bytes:
    fig = _figure(mpl)
    ax = fig.add_subplot()
    hours = list(k["hours"])
    xs = range(len(hours))
    per_day = max(1, len(k["days"]))
    ax.bar([x - 0.2 for x in xs], [k["hours"][h]["arrived"] / per_day for h in hours], 0.4,
           label=label("arrived", cfg))
    ax.bar([x + 0.2 for x in xs], [k["hours"][h]["served"] / per_day for h in hours], 0.4,
           label=label("served", cfg))
    ax.set_xticks(list(xs), [h[:2] for h in hours])
    ax.set_xlabel(label("hour", cfg))
    ax.set_ylabel(label("tickets", cfg) + (" / day" if per_day > 1 else ""))
    ax2 = ax.twinx()
    ax2.plot(list(xs), [k["hours"][h]["counters"] for h in hours], color="black", marker="o",
             label=label("counters", cfg))
    ax2.set_ylabel(label("counters", cfg))
    ax2.set_ylim(bottom=0)
    lines = ax.get_legend_handles_labels()
    more = ax2.get_legend_handles_labels()
    ax.legend(lines[0] + more[0], lines[1] + more[1], loc="upper left", fontsize="small")
    ax.set_title(label("arrivals_by_hour", cfg))
    return _png(mpl, fig)


def _waits(mpl: Any, k: dict[str, Any], cfg: BranchConfig) -> bytes:
    services = list(k["services"])
    fig = _figure(mpl, 8.0, 1.0 + 2.2 * max(1, len(services)))
    for i, sid in enumerate(services, 1):
        s = k["services"][sid]
        ax = fig.add_subplot(len(services), 1, i)
        edges, counts = s["wait_histogram"]["edges_min"], s["wait_histogram"]["counts"]
        ax.bar(range(len(edges)), counts, 0.8)
        ax.set_xticks(range(len(edges)), [f"{e}+" if j == len(edges) - 1 else f"{e}"
                                          for j, e in enumerate(edges)])
        if s["sla_wait_s"] is not None:
            sla_min = s["sla_wait_s"] / 60
            pos = sum(1 for e in edges if e <= sla_min) - 1
            j = max(0, min(pos, len(edges) - 1))
            nxt = edges[j + 1] if j + 1 < len(edges) else edges[j] + 30
            frac = (sla_min - edges[j]) / (nxt - edges[j]) if nxt > edges[j] else 0
            ax.axvline(j - 0.5 + frac, color="red", linestyle="--",  # bin j spans j±0.5
                       label=f"{label('sla', cfg)} {sla_min:g} min")
            ax.legend(fontsize="small")
        ax.set_title(f"{_service_name(cfg, sid)} ({s['wait']['n']})", fontsize="medium")
        ax.set_xlabel(label("wait_min", cfg))
    fig.suptitle(label("wait_by_service", cfg))
    return _png(mpl, fig)


def _satisfaction(mpl: Any, k: dict[str, Any], cfg: BranchConfig, kind: str) -> bytes:
    fig = _figure(mpl)
    ax = fig.add_subplot()
    keys = [key for key, v in k[kind].items() if v["ratings"]["n"]]
    vals = [k[kind][key]["ratings"]["satisfaction_pct"] for key in keys]
    bars = ax.bar(keys, vals)
    for bar, key in zip(bars, keys, strict=True):
        ax.annotate(f"n={k[kind][key]['ratings']['n']}",
                    (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                    ha="center", va="bottom", fontsize="small")
    ax.set_ylim(0, 110)
    ax.set_ylabel(label("satisfied_pct", cfg))
    ax.set_title(label(f"satisfaction_by_{'counter' if kind == 'counters' else 'staff'}", cfg))
    return _png(mpl, fig)


def _days(mpl: Any, k: dict[str, Any], cfg: BranchConfig) -> bytes:
    fig = _figure(mpl)
    ax = fig.add_subplot()
    days = list(k["daily"])
    for sid in k["services"]:
        ys = [k["daily"][d]["services"].get(sid) for d in days]
        ax.plot(days, [float("nan") if y is None else y for y in ys], marker="o",
                label=_service_name(cfg, sid))
        target = k["services"][sid]["sla_target_pct"]
        if target is not None:
            ax.axhline(target, linestyle=":", linewidth=0.8, color="grey")
    ax.set_ylim(0, 105)
    ax.set_ylabel(label("sla_pct", cfg))
    ax.tick_params(axis="x", labelrotation=60, labelsize="small")
    if k["services"]:
        ax.legend(fontsize="small")
    ax.set_title(label("service_level_by_day", cfg))
    return _png(mpl, fig)


def write_charts(charts: dict[str, bytes], out: Path) -> list[Path]:
    paths = []
    for name, png in charts.items():
        path = out / f"{name}.png"
        path.write_bytes(png)
        paths.append(path)
    return paths


def html_page(kpis: dict[str, Any], cfg: BranchConfig, charts: dict[str, bytes]) -> str:
    """One page: the charts (PNG as data: URIs) and the KPI tables; no external resource."""
    from tessera.report.export import CSV_COLUMNS, csv_rows

    esc = html.escape
    span = kpis["from"] if kpis["from"] == kpis["to"] else f"{kpis['from']} – {kpis['to']}"
    parts = [
        "<!DOCTYPE html>", '<html lang="' + esc(cfg.branch.languages[0]) + '">',
        '<head><meta charset="utf-8">',
        f"<title>{esc(cfg.branch.tenant)} {esc(cfg.branch.branch)} {esc(span)}</title>",
        "<style>body{font-family:sans-serif;margin:1em}table{border-collapse:collapse;"
        "margin:0.5em 0 1.5em}td,th{border:1px solid #bbb;padding:2px 6px;font-size:12px;"
        "text-align:right}th{background:#eee}img{max-width:100%}</style></head><body>",
        f"<h1>{esc(cfg.branch.tenant)} / {esc(cfg.branch.branch)}: {esc(span)}</h1>"]
    for note in kpis["notes"]:
        parts.append(f"<p><em>{esc(note)}</em></p>")
    if kpis["empty"]:
        parts.append("<p>No data: nothing was issued, refused, rated or booked in this "
                     "range.</p>")
    for name, png in charts.items():
        data = base64.b64encode(png).decode("ascii")
        parts.append(f'<figure id="{name}"><img alt="{esc(name)}" '
                     f'src="data:image/png;base64,{data}"></figure>')
    for table, rows in csv_rows(kpis).items():
        if not rows:
            continue
        parts.append(f"<h2>{esc(table)}</h2><table><tr>"
                     + "".join(f"<th>{esc(c)}</th>" for c in CSV_COLUMNS[table]) + "</tr>")
        for row in rows:
            parts.append("<tr>" + "".join(
                f"<td>{'' if v is None else esc(str(v))}</td>" for v in row) + "</tr>")
        parts.append("</table>")
    parts.append("</body></html>")
    return "\n".join(parts)


def write_html(kpis: dict[str, Any], cfg: BranchConfig, charts: dict[str, bytes],
               path: Path) -> Path:
    path.write_text(html_page(kpis, cfg, charts), encoding="utf-8")
    return path
