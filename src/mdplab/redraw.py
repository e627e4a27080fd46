"""Figures that an explorer redraws in place, fast enough to follow a slider.

The labs inline this module (numpy-free, no mdplab import) into a locked cell before their
explorers. A slider step should show its new figure within about 200 ms. Two costs stood
in the way, measured in benchmarks/bench_explorers.py:

- a new pyplot figure per step spends most of its time building axes, legends and tick
  labels again; a figure made once, whose artists each step only moves, keeps them;
- ``plt.show()`` under the inline backend draws every figure twice, the first time only
  to measure the margins it trims (``bbox_inches="tight"``); a fixed layout
  (``subplots_adjust``, or a crop measured once) needs one draw.

A figure outside pyplot is neither shown nor closed by pyplot at the end of the cell, and
with a canvas of its own it keeps the sizes of the texts it has laid out from one draw to
the next (``plt.close`` would swap the canvas and lose them).
"""

from io import BytesIO

from IPython.display import Image
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.transforms import Bbox


def redraw_figure(figsize: tuple[float, float]) -> Figure:
    """A figure of ``figsize`` inches outside pyplot, with an Agg canvas of its own."""
    fig = Figure(figsize=figsize)
    FigureCanvasAgg(fig)
    return fig


def figure_png(fig: Figure, crop: Bbox | None = None) -> Image:
    """The figure, or its part ``crop`` (in inches), as a PNG image drawn once.

    No "Software" entry is written, so the image is the same with any matplotlib version.
    """
    png = BytesIO()
    fig.savefig(png, format="png", bbox_inches=crop, metadata={"Software": None})
    return Image(png.getvalue())
