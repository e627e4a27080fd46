"""Saved widget state in the executed solutions: deterministic, and with a still of every
explorer, in the view's own output, for pages that have no widget manager (or may not run
it: an untrusted notebook in JupyterLab)."""

from __future__ import annotations

import copy

import nbformat
import pytest
from course_helpers import LAYOUT

from mdplab.course.widget_state import STATE_MIME, STILL_TEXT, VIEW_MIME, settle_widgets


def _model(name: str, **state: object) -> dict:
    return {
        "model_module": "@jupyter-widgets/controls",
        "model_module_version": "2.0.0",
        "model_name": name,
        "state": state,
    }


def _notebook(ids: dict[str, str]) -> nbformat.NotebookNode:
    """A cell that displays VBox(slider, Output) whose Output holds a figure and a line of
    text, with model ids from ``ids``, plus a closed widget that nothing displays."""
    figure = nbformat.v4.new_output(
        "display_data", data={"image/png": "iVBORw0KGgo=", "text/plain": "<Figure>"}
    )
    line = nbformat.v4.new_output("stream", name="stdout", text="evaluated 2 policies\n")
    models = {
        ids["box"]: _model(
            "VBoxModel",
            children=[f"IPY_MODEL_{ids['slider']}", f"IPY_MODEL_{ids['out']}"],
            layout=f"IPY_MODEL_{ids['layout']}",
        ),
        ids["slider"]: _model("FloatSliderModel", value=0.8),
        ids["out"]: _model("OutputModel", outputs=[figure, line], msg_id=""),
        ids["layout"]: _model("LayoutModel"),
        ids["closed"]: _model("IntSliderModel", value=3),
    }
    cell = nbformat.v4.new_code_cell("display(explorer)")
    cell.outputs = [
        nbformat.v4.new_output(
            "display_data",
            data={
                VIEW_MIME: {"version_major": 2, "version_minor": 0, "model_id": ids["box"]},
                "text/plain": "VBox(children=(FloatSlider(value=0.8), Output()))",
            },
        )
    ]
    heading = nbformat.v4.new_markdown_cell("# Lab")
    heading.id, cell.id = "heading", "explorer"  # not random, so that runs compare
    notebook = nbformat.v4.new_notebook(cells=[heading, cell])
    notebook.metadata["widgets"] = {
        STATE_MIME: {"state": models, "version_major": 2, "version_minor": 0}
    }
    return notebook


FIRST = {"box": "a1", "slider": "b2", "out": "c3", "layout": "d4", "closed": "e5"}
SECOND = {"box": "f9", "slider": "0e", "out": "77", "layout": "5c", "closed": "aa"}


def test_two_runs_with_other_random_ids_give_the_same_bytes():
    first, second = _notebook(FIRST), _notebook(SECOND)
    settle_widgets(first, "lab04")
    settle_widgets(second, "lab04")
    assert nbformat.writes(first) == nbformat.writes(second)


def test_models_are_renamed_in_reading_order_and_the_closed_one_is_dropped():
    notebook = _notebook(FIRST)
    settle_widgets(notebook, "lab04")
    state = notebook.metadata["widgets"][STATE_MIME]["state"]
    assert list(state) == [f"lab04w{n:027d}" for n in range(4)]
    box = state[f"lab04w{0:027d}"]["state"]
    # children before layout: references are followed in key order
    assert box["children"] == [f"IPY_MODEL_lab04w{1:027d}", f"IPY_MODEL_lab04w{2:027d}"]
    assert box["layout"] == f"IPY_MODEL_lab04w{3:027d}"
    view = notebook.cells[1].outputs[0]["data"][VIEW_MIME]
    assert view["model_id"] == f"lab04w{0:027d}"
    nbformat.validate(notebook)


def test_the_explorers_drawing_is_another_format_of_its_view():
    """One output: the widget where a widget manager may run, else the image, never both;
    the line the explorer printed follows as a copy."""
    notebook = _notebook(FIRST)
    settle_widgets(notebook, "lab04")
    view, line = notebook.cells[1].outputs
    assert set(view["data"]) == {VIEW_MIME, "image/png", "text/plain"}
    assert view["data"]["image/png"] == "iVBORw0KGgo="
    assert view["data"]["text/plain"] == STILL_TEXT
    assert view["metadata"] == {"mdplab": {"still": True}}
    assert line["output_type"] == "stream" and line["text"] == "evaluated 2 policies\n"
    nbformat.validate(notebook)


def test_a_view_whose_output_widgets_hold_no_image_is_left_as_text():
    notebook = _notebook(FIRST)
    models = notebook.metadata["widgets"][STATE_MIME]["state"]
    models["c3"]["state"]["outputs"] = models["c3"]["state"]["outputs"][1:]
    settle_widgets(notebook, "lab04")
    view, line = notebook.cells[1].outputs
    assert set(view["data"]) == {VIEW_MIME, "text/plain"} and "mdplab" not in view["metadata"]
    assert line["text"] == "evaluated 2 policies\n"


def test_settling_twice_changes_nothing_more():
    notebook = _notebook(FIRST)
    settle_widgets(notebook, "lab04")
    once = nbformat.writes(notebook)
    # A rebuild starts from a fresh execution, but a second pass must not stack stills
    # either: the stills are plain outputs, not views.
    again = copy.deepcopy(notebook)
    again.cells[1].outputs = again.cells[1].outputs[:1]
    settle_widgets(again, "lab04")
    assert nbformat.writes(again) == once


def test_a_notebook_without_widgets_is_left_alone():
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1 + 1")])
    before = nbformat.writes(notebook)
    settle_widgets(notebook, "lab00")
    assert nbformat.writes(notebook) == before


EXPLORERS = ("lab03", "lab04", "lab05", "lab06")


@pytest.mark.parametrize("lab", EXPLORERS)
def test_every_explorer_of_the_solutions_has_saved_state_and_a_still(lab):
    notebook = nbformat.read(LAYOUT.solutions / LAYOUT.lab(lab).notebook, as_version=4)
    state = notebook.metadata["widgets"][STATE_MIME]["state"]
    views = [
        output
        for cell in notebook.cells
        for output in cell.get("outputs", [])
        if VIEW_MIME in output.get("data", {})
    ]
    assert views, f"{lab}: no widget is displayed"
    for output in views:
        assert output["data"][VIEW_MIME]["model_id"] in state
    stills = [output for output in views if output.get("metadata", {}).get("mdplab")]
    assert any("image/png" in still["data"] for still in stills), f"{lab}: no still figure"
    images = [
        output
        for cell in notebook.cells
        for output in cell.get("outputs", [])
        if "image/png" in output.get("data", {}) and VIEW_MIME not in output["data"]
    ]
    assert all(
        output["data"]["image/png"] not in {s["data"]["image/png"] for s in stills}
        for output in images
    ), f"{lab}: the still is also shown on its own"
    assert all(key.startswith(f"{lab}w") for key in state)
