"""Static HTML pictures of saved ipywidgets, for exported pages that must work offline.

An executed notebook keeps its widgets twice: each output holds a *view*
(``application/vnd.jupyter.widget-view+json``: a model id) and the notebook's metadata holds
every model's last *state* (``metadata.widgets["application/vnd.jupyter.widget-state+json"]``,
saved by nbclient with ``store_widget_state=True``). A browser normally rebuilds the controls
with the widget manager's JavaScript, fetched from a CDN; offline, the reader sees only a
placeholder. :class:`StaticWidgetPreprocessor` replaces each view with plain HTML drawn from the
saved state: sliders, drop-downs, check boxes, buttons, labels, progress bars (tqdm's too),
output areas and boxes, nested. The controls are shown disabled: a picture, not a program.
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable

from nbconvert.preprocessors import Preprocessor

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
REF = "IPY_MODEL_"
MAX_DEPTH = 40

BAR_COLORS = {"success": "#4caf50", "info": "#00bcd4", "warning": "#ff9800",
              "danger": "#f44336", "": "#2196f3", None: "#2196f3"}
BUTTON_COLORS = {"primary": "#2196f3", "success": "#4caf50", "info": "#00bcd4",
                 "warning": "#ff9800", "danger": "#f44336"}
LAYOUT_CSS = ("width", "height", "min_width", "max_width", "min_height", "max_height", "flex",
              "flex_flow", "justify_content", "align_items", "align_content", "margin",
              "padding", "border", "overflow")
ROW = "display:flex;flex-direction:row;flex-wrap:wrap;align-items:center;gap:6px"
COLUMN = "display:flex;flex-direction:column;gap:4px"
CONTROL = "display:inline-flex;align-items:center;gap:6px;margin:2px 0"
NOTE = "static picture of the saved widget state; run the notebook to use it"


def widget_state(nb) -> dict[str, dict]:
    """The saved widget models of a notebook, by model id (empty if none were saved)."""
    saved = nb.get("metadata", {}).get("widgets", {}).get(WIDGET_STATE, {})
    return dict(saved.get("state", {}))


def _e(value) -> str:
    return html.escape("" if value is None else str(value))


def _fmt(value, spec: str | None) -> str:
    try:
        return format(value, spec or "")
    except (TypeError, ValueError):
        return str(value)


class StaticRenderer:
    """Turns saved widget models into HTML; ``render(model_id)`` is None for a missing model."""

    def __init__(self, state: dict[str, dict]):
        self.state = state
        self.handlers: dict[str, Callable[[dict, int], str]] = {
            "IntSlider": self._slider, "FloatSlider": self._slider,
            "FloatLogSlider": self._log_slider,
            "IntRangeSlider": self._range_slider, "FloatRangeSlider": self._range_slider,
            "SelectionSlider": self._selection_slider,
            "Dropdown": self._dropdown, "Select": self._select, "SelectMultiple": self._select,
            "RadioButtons": self._radio, "ToggleButtons": self._toggle_buttons,
            "Checkbox": self._checkbox, "ToggleButton": self._toggle_button,
            "Button": self._button, "Label": self._label, "HTML": self._html,
            "HTMLMath": self._html, "Text": self._text, "Password": self._text,
            "Combobox": self._text, "IntText": self._text, "FloatText": self._text,
            "BoundedIntText": self._text, "BoundedFloatText": self._text,
            "Textarea": self._textarea, "IntProgress": self._progress,
            "FloatProgress": self._progress, "Valid": self._valid,
            "Box": self._vbox, "VBox": self._vbox, "HBox": self._hbox, "GridBox": self._hbox,
            "Accordion": self._accordion, "Tab": self._tab, "Stack": self._stack,
            "Output": self._output, "Image": self._image,
        }

    # -- plumbing -----------------------------------------------------------------------------

    def model(self, ref: str | None) -> dict | None:
        if not isinstance(ref, str):
            return None
        return self.state.get(ref.removeprefix(REF))

    def render(self, model_id: str, depth: int = 0) -> str | None:
        """HTML for one model and its children, or None when its state was not saved."""
        model = self.model(model_id)
        if model is None or depth > MAX_DEPTH:
            return None
        state = model.get("state", {})
        layout = (self.model(state.get("layout")) or {}).get("state", {})
        if layout.get("display") == "none" or layout.get("visibility") == "hidden":
            return ""
        name = (model.get("model_name") or state.get("_model_name") or "").removesuffix("Model")
        handler = self.handlers.get(name, self._unknown)
        body = handler(model, depth)
        css = ";".join(f"{k.replace('_', '-')}:{_e(layout[k])}" for k in LAYOUT_CSS
                       if layout.get(k) not in (None, ""))
        return f'<div style="{css}">{body}</div>' if css else body

    def _children(self, state: dict, depth: int) -> list[str]:
        out = []
        for ref in state.get("children", []):
            rendered = self.render(ref.removeprefix(REF) if isinstance(ref, str) else "",
                                   depth + 1)
            out.append(rendered if rendered is not None else
                       '<span style="opacity:.6">[widget state not saved]</span>')
        return out

    @staticmethod
    def _description(state: dict) -> str:
        text = state.get("description") or ""
        if not text:
            return ""
        shown = text if state.get("description_allow_html") else _e(text)
        return f'<span class="widget-description">{shown}</span>'

    def _control(self, state: dict, inner: str) -> str:
        tip = f' title="{_e(state["tooltip"])}"' if state.get("tooltip") else ""
        return f'<span style="{CONTROL}"{tip}>{self._description(state)}{inner}</span>'

    # -- controls -----------------------------------------------------------------------------

    def _slider(self, model: dict, depth: int) -> str:
        s = model["state"]
        value = s.get("value", 0)
        readout = _fmt(value, s.get("readout_format")) if s.get("readout", True) else ""
        return self._control(s, (
            f'<input type="range" disabled min="{_e(s.get("min", 0))}" '
            f'max="{_e(s.get("max", 100))}" step="{_e(s.get("step", 1) or "any")}" '
            f'value="{_e(value)}"><span class="widget-readout">{_e(readout)}</span>'))

    def _log_slider(self, model: dict, depth: int) -> str:
        s = model["state"]
        value, base = s.get("value", 1.0), s.get("base", 10.0)
        position = math.log(value, base) if value and value > 0 else s.get("min", 0)
        return self._control(s, (
            f'<input type="range" disabled min="{_e(s.get("min", 0))}" '
            f'max="{_e(s.get("max", 4))}" step="any" value="{_e(position)}">'
            f'<span class="widget-readout">{_e(_fmt(value, s.get("readout_format")))}</span>'))

    def _range_slider(self, model: dict, depth: int) -> str:
        s = model["state"]
        lo, hi = (list(s.get("value") or [0, 0]) + [0, 0])[:2]
        span = (s.get("max", 100) - s.get("min", 0)) or 1
        left = 100 * (lo - s.get("min", 0)) / span
        width = 100 * (hi - lo) / span
        spec = s.get("readout_format")
        track = (
            '<span style="position:relative;display:inline-block;width:160px;height:6px;'
            'background:#ccc;border-radius:3px"><span style="position:absolute;'
            f'left:{left:.1f}%;width:{width:.1f}%;height:100%;background:#2196f3;'
            'border-radius:3px"></span></span>'
        )
        return self._control(s, f'{track}<span class="widget-readout">{_e(_fmt(lo, spec))} - '
                                f'{_e(_fmt(hi, spec))}</span>')

    @staticmethod
    def _options(s: dict) -> list[str]:
        return list(s.get("_options_labels") or [])

    def _selection_slider(self, model: dict, depth: int) -> str:
        s = model["state"]
        labels, index = self._options(s), s.get("index") or 0
        chosen = labels[index] if 0 <= index < len(labels) else ""
        return self._control(s, (
            f'<input type="range" disabled min="0" max="{max(len(labels) - 1, 0)}" step="1" '
            f'value="{_e(index)}"><span class="widget-readout">{_e(chosen)}</span>'))

    def _dropdown(self, model: dict, depth: int) -> str:
        s = model["state"]
        options = "".join(
            f'<option{" selected" if i == s.get("index") else ""}>{_e(label)}</option>'
            for i, label in enumerate(self._options(s)))
        return self._control(s, f"<select disabled>{options}</select>")

    def _select(self, model: dict, depth: int) -> str:
        s = model["state"]
        index = s.get("index")
        chosen = set(index) if isinstance(index, list | tuple) else {index}
        labels = self._options(s)
        multiple = " multiple" if isinstance(index, list | tuple) else ""
        options = "".join(f'<option{" selected" if i in chosen else ""}>{_e(label)}</option>'
                          for i, label in enumerate(labels))
        size = s.get("rows") or min(len(labels), 5) or 1
        return self._control(s, f'<select disabled size="{size}"{multiple}>{options}</select>')

    def _radio(self, model: dict, depth: int) -> str:
        s = model["state"]
        items = "".join(
            f'<label style="display:block"><input type="radio" disabled'
            f'{" checked" if i == s.get("index") else ""}> {_e(label)}</label>'
            for i, label in enumerate(self._options(s)))
        return self._control(s, f"<span>{items}</span>")

    def _toggle_buttons(self, model: dict, depth: int) -> str:
        s = model["state"]
        buttons = "".join(
            self._button_html(label, pressed=(i == s.get("index")), style=s.get("button_style"))
            for i, label in enumerate(self._options(s)))
        return self._control(s, buttons)

    @staticmethod
    def _button_html(text: str, pressed: bool = False, style: str | None = None) -> str:
        color = BUTTON_COLORS.get(style or "")
        css = "padding:2px 10px;border-radius:2px;border:1px solid #999;"
        if color:
            css += f"background:{color};color:white;"
        if pressed:
            css += "box-shadow:inset 0 2px 4px rgba(0,0,0,.4);font-weight:bold;"
        return f'<button type="button" disabled style="{css}">{_e(text)}</button>'

    def _checkbox(self, model: dict, depth: int) -> str:
        s = model["state"]
        checked = " checked" if s.get("value") else ""
        return (f'<label style="{CONTROL}"><input type="checkbox" disabled{checked}>'
                f'{self._description(s)}</label>')

    def _toggle_button(self, model: dict, depth: int) -> str:
        s = model["state"]
        return self._button_html(s.get("description", ""), bool(s.get("value")),
                                 s.get("button_style"))

    def _button(self, model: dict, depth: int) -> str:
        s = model["state"]
        return self._button_html(s.get("description", ""), style=s.get("button_style"))

    def _label(self, model: dict, depth: int) -> str:
        return f'<span>{_e(model["state"].get("value", ""))}</span>'

    def _html(self, model: dict, depth: int) -> str:
        s = model["state"]
        return self._control(s, f'<span>{s.get("value") or ""}</span>')

    def _text(self, model: dict, depth: int) -> str:
        s = model["state"]
        value = s.get("value")
        kind = "password" if model.get("model_name") == "PasswordModel" else "text"
        placeholder = f' placeholder="{_e(s["placeholder"])}"' if s.get("placeholder") else ""
        return self._control(
            s, f'<input type="{kind}" disabled value="{_e(value)}"{placeholder}>')

    def _textarea(self, model: dict, depth: int) -> str:
        s = model["state"]
        return self._control(s, f'<textarea disabled rows="{_e(s.get("rows") or 3)}">'
                                f'{_e(s.get("value"))}</textarea>')

    def _progress(self, model: dict, depth: int) -> str:
        s = model["state"]
        lo, hi = s.get("min") or 0, s.get("max") or 0
        value = s.get("value") or 0
        share = min(max((value - lo) / (hi - lo), 0.0), 1.0) if hi > lo else 0.0
        style = (self.model(s.get("style")) or {}).get("state", {})
        color = style.get("bar_color") or BAR_COLORS.get(s.get("bar_style"), BAR_COLORS[""])
        bar = (
            f'<span role="progressbar" aria-valuemin="{_e(lo)}" aria-valuemax="{_e(hi)}" '
            f'aria-valuenow="{_e(value)}" style="display:inline-block;flex:1;min-width:160px;'
            'height:12px;background:#e0e0e0;border:1px solid #bdbdbd;border-radius:2px">'
            f'<span style="display:block;height:100%;width:{100 * share:.1f}%;'
            f'background:{_e(color)}"></span></span>'
        )
        return self._control(s, bar)

    def _valid(self, model: dict, depth: int) -> str:
        s = model["state"]
        mark = ('<span style="color:#4caf50">&#10003;</span>' if s.get("value") else
                '<span style="color:#f44336">&#10007;</span>')
        return self._control(s, f"{mark}<span>{_e(s.get('readout', ''))}</span>")

    # -- containers ---------------------------------------------------------------------------

    def _vbox(self, model: dict, depth: int) -> str:
        return f'<div style="{COLUMN}">{"".join(self._children(model["state"], depth))}</div>'

    def _hbox(self, model: dict, depth: int) -> str:
        return f'<div style="{ROW}">{"".join(self._children(model["state"], depth))}</div>'

    @staticmethod
    def _titles(s: dict, n: int) -> list[str]:
        titles = list(s.get("titles") or [])
        return [(titles[i] if i < len(titles) and titles[i] else f"{i + 1}") for i in range(n)]

    def _accordion(self, model: dict, depth: int) -> str:
        s = model["state"]
        children = self._children(s, depth)
        return "".join(
            f'<details{" open" if i == s.get("selected_index") else ""} '
            f'style="border:1px solid #ccc;padding:2px 6px"><summary>{_e(title)}</summary>'
            f"{child}</details>"
            for i, (title, child) in enumerate(zip(self._titles(s, len(children)), children,
                                                   strict=True)))

    def _tab(self, model: dict, depth: int) -> str:
        s = model["state"]
        children = self._children(s, depth)
        chosen = s.get("selected_index") or 0
        heads = "".join(
            f'<span style="padding:2px 10px;border:1px solid #ccc;'
            f'{"font-weight:bold;border-bottom:none" if i == chosen else "opacity:.7"}">'
            f"{_e(t)}</span>" for i, t in enumerate(self._titles(s, len(children))))
        body = children[chosen] if 0 <= chosen < len(children) else ""
        return (f'<div><div style="display:flex">{heads}</div>'
                f'<div style="border:1px solid #ccc;padding:6px">{body}</div></div>')

    def _stack(self, model: dict, depth: int) -> str:
        s = model["state"]
        children = self._children(s, depth)
        chosen = s.get("selected_index")
        return children[chosen] if isinstance(chosen, int) and 0 <= chosen < len(children) else ""

    def _output(self, model: dict, depth: int) -> str:
        return "".join(self.output_html(o, depth) for o in model["state"].get("outputs", []))

    def output_html(self, output: dict, depth: int = 0) -> str:
        """One saved cell output (stream, display data, error) as HTML."""
        kind = output.get("output_type")
        if kind == "stream":
            return f'<pre style="margin:0">{_e(output.get("text", ""))}</pre>'
        if kind == "error":
            return (f'<pre style="margin:0;color:#f44336">{_e(output.get("ename"))}: '
                    f'{_e(output.get("evalue"))}</pre>')
        data = output.get("data", {})
        if WIDGET_VIEW in data:
            rendered = self.render(data[WIDGET_VIEW].get("model_id", ""), depth + 1)
            if rendered is not None:
                return rendered
        for mime in ("image/png", "image/jpeg", "image/gif"):
            if mime in data:
                alt = _e(data.get("text/plain", "image"))
                return f'<img src="data:{mime};base64,{_clean_b64(data[mime])}" alt="{alt}">'
        if "image/svg+xml" in data:
            return str(data["image/svg+xml"])
        if "text/html" in data:
            return _joined(data["text/html"])
        if "text/markdown" in data:
            return _markdown(_joined(data["text/markdown"]))
        if "text/plain" in data:
            return f'<pre style="margin:0">{_e(_joined(data["text/plain"]))}</pre>'
        return ""

    def _image(self, model: dict, depth: int) -> str:
        s = model["state"]
        fmt = s.get("format") or "png"
        data = next((b.get("data") for b in model.get("buffers", [])
                     if list(b.get("path", [])) == ["value"]), None)
        if not data:
            return '<span style="opacity:.6">[image]</span>'
        size = "".join(f' {k}="{_e(s[k])}"' for k in ("width", "height") if s.get(k))
        return f'<img src="data:image/{_e(fmt)};base64,{_clean_b64(data)}"{size}>'

    def _unknown(self, model: dict, depth: int) -> str:
        s = model.get("state", {})
        if s.get("children"):
            return self._vbox(model, depth)
        value = s.get("value")
        shown = "" if value is None or isinstance(value, dict | list) else _e(value)
        name = _e(model.get("model_name", "widget"))
        return self._control(s, f'<span title="{name}">{shown}</span>')


def _joined(text) -> str:
    return "".join(text) if isinstance(text, list) else str(text)


def _clean_b64(data) -> str:
    return _joined(data).replace("\n", "")


def _markdown(text: str) -> str:
    try:
        from nbconvert.filters.markdown_mistune import markdown2html_mistune

        return markdown2html_mistune(text)
    except Exception:  # pragma: no cover - mistune missing or failing: show the source
        return f"<pre>{_e(text)}</pre>"


class StaticWidgetPreprocessor(Preprocessor):
    """Replace widget views with static HTML drawn from the notebook's saved widget state.

    A view whose model was not saved falls back to its ``text/plain`` representation. The
    widget state is then dropped from the (exported copy of the) notebook, so the page loads no
    widget manager from the network.
    """

    def preprocess(self, nb, resources):
        self.renderer = StaticRenderer(widget_state(nb))
        nb, resources = super().preprocess(nb, resources)
        nb.metadata.pop("widgets", None)
        return nb, resources

    def preprocess_cell(self, cell, resources, index):
        for output in cell.get("outputs", []):
            data = output.get("data")
            if not data or WIDGET_VIEW not in data:
                continue
            view = data.pop(WIDGET_VIEW)
            rendered = self.renderer.render(view.get("model_id", ""))
            if rendered is None:
                if "text/plain" not in data:
                    data["text/plain"] = "[a widget whose state was not saved]"
                continue
            data.clear()
            data["text/html"] = (f'<div class="static-widget" title="{NOTE}" '
                                 f'style="margin:4px 0">{rendered}</div>')
        return cell, resources
