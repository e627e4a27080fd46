"""mdplab.redraw, the explorers' figure helpers: one draw, outside pyplot, the same bytes
with any matplotlib version (no "Software" entry), and a crop that trims."""

from __future__ import annotations

import struct

import matplotlib.pyplot as plt
from matplotlib.transforms import Bbox

from mdplab.redraw import figure_png, redraw_figure


def png_size(data: bytes) -> tuple[int, int]:
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    return struct.unpack(">II", data[16:24])


def test_the_figure_is_not_pyplot_s_and_draws_at_its_size() -> None:
    before = plt.get_fignums()
    fig = redraw_figure((4, 2))
    ax = fig.subplots()
    ax.plot([0, 1], [0, 1])
    assert plt.get_fignums() == before  # the end of a cell neither shows nor closes it
    image = figure_png(fig)
    assert png_size(image.data) == (4 * fig.dpi, 2 * fig.dpi)
    assert b"Software" not in image.data and b"matplotlib" not in image.data


def test_a_redraw_shows_what_moved() -> None:
    fig = redraw_figure((3, 2))
    (line,) = fig.subplots().plot([0, 1], [0, 1])
    first = figure_png(fig).data
    line.set_ydata([1, 0])
    assert figure_png(fig).data != first
    line.set_ydata([0, 1])
    assert figure_png(fig).data == first


def test_a_crop_trims_the_figure() -> None:
    fig = redraw_figure((4, 3))
    fig.subplots().plot([0, 1], [0, 1])
    width, height = png_size(figure_png(fig, Bbox.from_bounds(0.5, 0.5, 2, 1)).data)
    assert (width, height) == (2 * fig.dpi, 1 * fig.dpi)
