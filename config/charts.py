"""Server-side PNG charts: one way to make a figure and turn it into PNG bytes, for every app's plots.

matplotlib is imported on the first chart, not when a module that draws charts is imported: it costs ~0.4 s, and
``manage.py`` commands and web processes that never draw a chart should not pay it. Figures are made with the
object-oriented API (``matplotlib.figure.Figure`` on an Agg canvas), never pyplot: no global figure registry to
leak into or close, and safe in threaded servers.
"""

from __future__ import annotations

import io


def new_figure(figsize: tuple[float, float], dpi: int = 100, ncols: int = 1):
    """A figure and its axes: ``(fig, ax)``, or ``(fig, [ax, …])`` side by side with ``ncols`` > 1."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, dpi=dpi)
    FigureCanvasAgg(fig)
    return fig, fig.subplots(1, ncols) if ncols > 1 else fig.subplots()


def png_bytes(fig) -> bytes:
    """A finished figure as PNG bytes."""
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png")
    return buf.getvalue()
