"""Trend plots of a scenario run (matplotlib, Agg): one panel per group of
analog tags, BOOL tags (alarms, trips) as shaded spans across every panel,
failed expectations as red lines. Controls engineers read trends, not logs."""
from __future__ import annotations

from plc_lang.types import BoolType, strip_subrange


def plot_result(result, path: str, groups: list[list[str]]) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = result.trace_tags
    types = dict(zip(names, result.trace_types))
    t = [row[0] / 1e9 for row in result.trace]
    col = {n: [row[1][i] for row in result.trace] for i, n in enumerate(names)}
    flags = [n for n in names if isinstance(strip_subrange(types[n]), BoolType)]
    panels = [[n for n in g if n not in flags] for g in groups]
    panels = [p for p in panels if p] or [[]]
    fig, axes = plt.subplots(len(panels), 1, sharex=True, figsize=(11, 2.6 * len(panels) + 0.8), squeeze=False)
    shades = ["#f4a582", "#92c5de", "#b8e186", "#fdb863", "#c2a5cf"]
    for ax, panel in zip(axes[:, 0], panels):
        for n in panel:
            ax.plot(t, col[n], label=n, linewidth=1.2)
        for k, f in enumerate(flags):
            on = None
            for ti, v in zip(t + [t[-1] if t else 0], col[f] + [False]):
                if v and on is None:
                    on = ti
                elif not v and on is not None:
                    ax.axvspan(on, ti, color=shades[k % len(shades)], alpha=0.35,
                               label=f if on == _first_on(t, col[f]) else None)
                    on = None
        for x in result.expects:
            if not x.ok and x.fail_t_ns is not None:
                ax.axvline(x.fail_t_ns / 1e9, color="red", linewidth=1.5, linestyle="--")
        ax.grid(True, alpha=0.3)
        if panel or flags:
            ax.legend(loc="upper left", fontsize=8)
    failed = [x for x in result.expects if not x.ok]
    title = f"{result.scenario.name}: {'PASS' if not failed and result.fault is None else 'FAIL'}"
    if failed:
        title += " — " + "; ".join(f"{x.describe()} failed at {x.fail_t_ns / 1e9:.2f}s" for x in failed[:2])
    axes[0, 0].set_title(title, fontsize=10)
    axes[-1, 0].set_xlabel("scenario time [s]")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _first_on(t, values):
    for ti, v in zip(t, values):
        if v:
            return ti
    return None
