"""The explorers' widgets in an executed worked solution: saved state, and a still.

A notebook run by nbclient with ``store_widget_state=True`` carries its widgets' models in
``metadata.widgets`` (the ``application/vnd.jupyter.widget-state+json`` bundle), the
figures that an explorer drew into its ``Output`` widget included: JupyterLab restores the
explorer from it instead of printing ``VBox(children=(HBox(...`` as text. Two things keep
that from being committed as it comes:

- **Model ids are random** (uuid4 per widget), so every build would change the file. They
  are renamed in the order a reader meets them (outputs from the top, each widget's
  children depth first), and the models that no output shows (closed widgets) are
  dropped: the same notebook gives the same bytes on every build.
- **A page without a widget manager shows nothing** (GitHub, nbviewer, the course site,
  and JupyterLab itself while the notebook is not trusted: its widget renderer is not a
  safe one, so an untrusted view falls back to the text ``VBox(children=...``). The
  explorer's first drawing lives only inside the widget state. :func:`settle_widgets` puts
  a still of it, the first image that the explorer's ``Output`` widgets hold, into the
  view's own output as another format of the same display: a widget manager that may run
  shows the widget, anything else the image (and never both), and the text format says
  what the output is. The view is marked ``{"mdplab": {"still": true}}``; any other output
  those widgets hold (printed lines) follows the view as a copy.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator

import nbformat

__all__ = ["STATE_MIME", "STILL_TEXT", "VIEW_MIME", "images", "settle_widgets", "stills"]

STATE_MIME = "application/vnd.jupyter.widget-state+json"
VIEW_MIME = "application/vnd.jupyter.widget-view+json"
REFERENCE = re.compile(r"^IPY_MODEL_(.+)$")
# What a view holding a still says as text, for a reader that shows neither.
STILL_TEXT = "Interactive explorer: run the cell to use it. The image shows its first drawing."


def settle_widgets(notebook: nbformat.NotebookNode, prefix: str) -> None:
    """Rename ``notebook``'s widget models ``<prefix>w<n>`` in reading order, drop the
    models no output shows, and give every view whose ``Output`` widgets hold an image that
    image as its still (other outputs they hold follow the view). A notebook without widget
    state is left as it is."""
    bundle = notebook.metadata.get("widgets", {}).get(STATE_MIME)
    if not bundle or not bundle.get("state"):
        notebook.metadata.pop("widgets", None)
        return
    models = bundle["state"]
    order: list[str] = []
    for output in _views(notebook):
        _walk(output["data"][VIEW_MIME]["model_id"], models, order)
    # 32 characters, as long as the uuid hex ids the kernel draws.
    names = {old: f"{prefix}w{n:027d}" for n, old in enumerate(order)}
    for cell in notebook.cells:
        outputs = []
        for output in cell.get("outputs", []):
            outputs.append(output)
            view = output.get("data", {}).get(VIEW_MIME) if "data" in output else None
            if view is None:
                continue
            held = stills(view["model_id"], models)
            view["model_id"] = names.get(view["model_id"], view["model_id"])
            picture = next((still for still in held if images(still)), None)
            if picture is not None:
                held.remove(picture)
                output["data"] = {VIEW_MIME: view, **images(picture), "text/plain": STILL_TEXT}
                output["metadata"] = {
                    **{key: value for key, value in picture.metadata.items() if key != "mdplab"},
                    "mdplab": {"still": True},
                }
            outputs.extend(held)
        if cell.cell_type == "code":
            cell.outputs = outputs
    bundle["state"] = {names[old]: _renamed(models[old], names) for old in order}
    if not bundle["state"]:
        notebook.metadata.pop("widgets", None)


def stills(model_id: str, models: dict) -> list[nbformat.NotebookNode]:
    """Copies of the outputs that the ``Output`` widgets under ``model_id`` hold, depth
    first, the rich ones marked as a still."""
    order: list[str] = []
    _walk(model_id, models, order)
    found = []
    for key in order:
        model = models[key]
        if model.get("model_name") != "OutputModel":
            continue
        for output in model.get("state", {}).get("outputs", []):
            still = nbformat.from_dict(copy.deepcopy(output))
            if still.get("output_type") in ("display_data", "execute_result"):
                still = nbformat.v4.new_output(
                    "display_data",
                    data=still.get("data", {}),
                    metadata={**still.get("metadata", {}), "mdplab": {"still": True}},
                )
            found.append(still)
    return found


def images(output: dict) -> dict:
    """The image formats of a display output (none for a stream)."""
    return {key: value for key, value in output.get("data", {}).items() if key.startswith("image/")}


def _views(notebook: nbformat.NotebookNode) -> Iterator[dict]:
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            if VIEW_MIME in output.get("data", {}):
                yield output


def _walk(model_id: str, models: dict, order: list[str]) -> None:
    """Append ``model_id`` and every model its state refers to, depth first, to ``order``."""
    if model_id in order or model_id not in models:
        return
    order.append(model_id)
    for reference in _references(models[model_id].get("state", {})):
        _walk(reference, models, order)


def _references(value: object) -> Iterator[str]:
    """The model ids that a state refers to (``"IPY_MODEL_<id>"`` strings), in key order."""
    if isinstance(value, str):
        match = REFERENCE.match(value)
        if match:
            yield match.group(1)
    elif isinstance(value, dict):
        for key in sorted(value):
            yield from _references(value[key])
    elif isinstance(value, list):
        for item in value:
            yield from _references(item)


def _renamed(value: object, names: dict[str, str]) -> object:
    if isinstance(value, str):
        match = REFERENCE.match(value)
        return f"IPY_MODEL_{names[match.group(1)]}" if match and match.group(1) in names else value
    if isinstance(value, dict):
        return {key: _renamed(item, names) for key, item in value.items()}
    if isinstance(value, list):
        return [_renamed(item, names) for item in value]
    return value
