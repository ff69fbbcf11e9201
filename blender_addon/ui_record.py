"""A test mode for the panels: what they drew, as data.

With FLAMENCO_UI_RECORD=1 in Blender's environment, each panel draws through a
Recorder that passes every call on to Blender's layout and keeps a tree of what
was drawn (containers, labels, fields with their values, buttons with their
properties, enabled and alert states). The GUI tests (tests/gui) read
`drawn[panel]` after a redraw and assert on it; without the variable `wrap`
returns Blender's own layout and nothing is recorded.
"""

from __future__ import annotations

import os
from typing import Any

ENABLED = os.environ.get("FLAMENCO_UI_RECORD", "") not in ("", "0")

drawn: dict[str, "Node"] = {}
"""Panel (or preferences) id -> the tree its last draw made."""

draw_counts: dict[str, int] = {}

_CONTAINERS = ("row", "column", "box", "split", "column_flow", "grid_flow")
_STATES = ("enabled", "alert", "active")


def wrap(layout, name: str):
    """`layout` itself, or a Recorder around it that records into drawn[name]."""
    if not ENABLED:
        return layout
    root = Node("panel")
    drawn[name] = root
    draw_counts[name] = draw_counts.get(name, 0) + 1
    return Recorder(layout, root)


def _plain(value: Any) -> Any:
    """A value as JSON can hold it (Blender's ID blocks and arrays become their names/lists)."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    name = getattr(value, "name", None)
    if isinstance(name, str):
        return name
    try:
        return [_plain(v) for v in value]
    except TypeError:
        return str(value)


def _enum_items(data, name: str, prop) -> list[tuple[str, str]]:
    """(identifier, label) of an enum's items. Blender's RNA does not list a dynamic enum's:
    its items function is found in the class's `dynamic_enums` table (see props.py)."""
    items = [(i.identifier, i.name) for i in getattr(prop, "enum_items", ())]
    make = getattr(type(data), "dynamic_enums", {}).get(name)
    if not items and callable(make):
        items = [(i[0], i[1]) for i in make(data, None)]
    return items


class Node:
    """A container (panel, row, column, box, ...) and what was drawn in it, in order."""

    def __init__(self, kind: str, parent: "Node | None" = None):
        self.kind = kind
        self.parent = parent
        self.uid = parent.root.count() if parent is not None else 0
        self.root: Node = parent.root if parent is not None else self
        self._made = 0
        self.states: dict[str, bool] = {}
        self.children: list[Node | dict] = []

    def count(self) -> int:
        self._made += 1
        return self._made

    def chain(self) -> list["Node"]:
        node, out = self, []
        while node is not None:
            out.append(node)
            node = node.parent
        return out

    @property
    def enabled(self) -> bool:
        """False when this container or one around it was disabled."""
        return all(n.states.get("enabled", True) for n in self.chain())

    @property
    def alert(self) -> bool:
        return any(n.states.get("alert", False) for n in self.chain())

    def to_dict(self) -> dict:
        return {"kind": self.kind, **self.states,
                "children": [c.to_dict() if isinstance(c, Node) else dict(c) for c in self.children]}

    def flat(self, path: tuple[str, ...] = ()) -> list[dict]:
        """Every drawn item, in order, with its effective enabled/alert state and its containers
        ('box#3': the third container made in this draw, a box)."""
        out = []
        for child in self.children:
            if isinstance(child, Node):
                out.extend(child.flat(path + (f"{child.kind}#{child.uid}",)))
            else:
                out.append({**child, "enabled": self.enabled and child.get("enabled", True),
                            "alert": self.alert or child.get("alert", False), "path": list(path)})
        return out


class _OperatorProps:
    """Passes operator properties through and notes them in the button's entry."""

    def __init__(self, props, entry: dict):
        object.__setattr__(self, "_props", props)
        object.__setattr__(self, "_entry", entry)

    def __setattr__(self, name, value):
        if self._props is not None:
            setattr(self._props, name, value)
        self._entry.setdefault("props", {})[name] = _plain(value)

    def __getattr__(self, name):
        return getattr(self._props, name)


class Recorder:
    def __init__(self, layout, node: Node):
        object.__setattr__(self, "_layout", layout)
        object.__setattr__(self, "_node", node)

    def __getattr__(self, name):
        if name in _CONTAINERS:
            return self._container(name)
        real = getattr(self._layout, name)  # AttributeError as Blender's own layout would raise
        if name == "progress":  # Blender 4.0+ only, so `hasattr(layout, "progress")` stays true to Blender
            def progress(**kwargs):
                self._add({"kind": "progress", "text": kwargs.get("text", ""), "factor": kwargs.get("factor", 0.0)})
                return real(**kwargs)
            return progress
        return real

    def __setattr__(self, name, value):
        setattr(self._layout, name, value)
        if name in _STATES:
            self._node.states[name] = bool(value)

    def _container(self, kind: str):
        def make(*args, **kwargs):
            sub = Node(kind, self._node)
            self._node.children.append(sub)
            if kwargs.get("heading"):
                sub.children.append({"kind": "heading", "text": kwargs["heading"]})
            return Recorder(getattr(self._layout, kind)(*args, **kwargs), sub)
        return make

    def _add(self, entry: dict) -> dict:
        self._node.children.append(entry)
        return entry

    def label(self, *, text: str = "", icon: str = "NONE", **kwargs):
        self._add({"kind": "label", "text": text, "icon": icon})
        return self._layout.label(text=text, icon=icon, **kwargs)

    def prop(self, data, property: str, *args, **kwargs):
        entry = {"kind": "prop", "property": property, "value": _plain(getattr(data, property, None)),
                 "text": kwargs.get("text"), "owner": _plain(getattr(data, "name", None))}
        if kwargs.get("slider"):
            entry["slider"] = True
        rna = getattr(data, "bl_rna", None)
        prop = rna.properties.get(property) if rna is not None else None
        if prop is not None:
            entry["label"] = prop.name
            entry["subtype"] = getattr(prop, "subtype", "")
            if getattr(prop, "type", "") == "ENUM":
                entry["items"] = _enum_items(data, property, prop)
        self._add(entry)
        return self._layout.prop(data, property, *args, **kwargs)

    def prop_search(self, data, property: str, search_data, search_property: str, *args, **kwargs):
        value = _plain(getattr(data, property, None))
        choices = [_plain(i) for i in getattr(search_data, search_property, ())]
        self._add({"kind": "prop_search", "property": property, "value": value, "text": kwargs.get("text"),
                   "choices": choices, "alert": bool(value) and value not in choices})
        return self._layout.prop_search(data, property, search_data, search_property, *args, **kwargs)

    def operator(self, idname: str, *args, **kwargs):
        entry = self._add({"kind": "operator", "operator": idname, "text": kwargs.get("text"),
                           "icon": kwargs.get("icon", "NONE")})
        return _OperatorProps(self._layout.operator(idname, *args, **kwargs), entry)

    def template_icon(self, **kwargs):
        self._add({"kind": "icon", "icon_value": kwargs.get("icon_value", 0)})
        return self._layout.template_icon(**kwargs)

    def separator(self, *args, **kwargs):
        return self._layout.separator(*args, **kwargs)
