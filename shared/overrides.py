"""Render-setting overrides (`rna_overrides`): literal values assigned to Blender data paths, nothing else.

The lines are Python that Blender runs before rendering, so unchecked they
would let any project member run any code on the workers. They are checked
twice with the same function: by the Server when a job is submitted, and by
the worker before it writes or runs an overrides file (which, on shared
storage, anyone who can write next to the .blend could have changed).

Allowed is one assignment per statement of a literal (number, text, True,
False, None, a negative number, or a tuple/list of those) to a data path that
starts at `bpy.context.scene`, `bpy.context.view_layer` or `bpy.data.<collection>`,
made of attribute names (not starting with '_') and literal subscripts, e.g.

    bpy.context.scene.render.resolution_percentage = 50
    bpy.data.scenes["Scene"].cycles.samples = 16
    bpy.context.scene.render.resolution_x, bpy.context.scene.render.resolution_y = 1920, 1080   # refused

plus `import bpy` and comments, which the Server's own header has.
"""

from __future__ import annotations

import ast

ROOTS = (("bpy", "context", "scene"), ("bpy", "context", "view_layer"), ("bpy", "data"))
MAX_LINES = 1000
MAX_CHARS = 256 * 1024


class OverrideError(ValueError):
    """An overrides line that is not a literal assigned to a data path; `line` is 1-based."""

    def __init__(self, line: int, reason: str, text: str | None = None):
        super().__init__(f"line {line}" + (f" ({text.strip()[:80]!r})" if text is not None else "") + f": {reason}")
        self.line, self.reason = line, reason


def _literal(node: ast.AST) -> bool:
    if isinstance(node, ast.Constant):
        return isinstance(node.value, (int, float, str, bool, type(None)))
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        return isinstance(node.operand, ast.Constant) and isinstance(node.operand.value, (int, float)) \
            and not isinstance(node.operand.value, bool)
    if isinstance(node, (ast.Tuple, ast.List)):
        return all(_literal(e) for e in node.elts)
    return False


def _path(node: ast.AST) -> list[str] | None:
    """The names of a data path `bpy.a.b["k"].c` (subscripts as '[]'), or None if it is not one."""
    names: list[str] = []
    while True:
        if isinstance(node, ast.Attribute):
            if node.attr.startswith("_"):
                return None
            names.append(node.attr)
            node = node.value
        elif isinstance(node, ast.Subscript):
            index = node.slice
            if not (isinstance(index, ast.Constant) and isinstance(index.value, (int, str))
                    and not isinstance(index.value, bool)):
                return None
            names.append("[]")
            node = node.value
        elif isinstance(node, ast.Name):
            names.append(node.id)
            return names[::-1]
        else:
            return None


def _rooted(names: list[str]) -> bool:
    for root in ROOTS:
        if tuple(names[:len(root)]) == root and "[]" not in names[:len(root)]:
            rest = names[len(root):]
            if root == ("bpy", "data"):  # a collection, then something in it
                return len(rest) >= 2 and rest[0] != "[]"
            return bool(rest)
    return False


def check_source(source: str) -> None:
    """OverrideError unless `source` holds only `import bpy`, comments and allowed assignments."""
    if len(source) > MAX_CHARS:
        raise OverrideError(1, f"overrides may be at most {MAX_CHARS} characters")
    try:
        tree = ast.parse(source)
    except SyntaxError as ex:
        raise OverrideError(ex.lineno or 1, f"not valid Python: {ex.msg}") from None
    except (ValueError, RecursionError, MemoryError) as ex:
        raise OverrideError(1, f"not valid Python: {ex}") from None
    for stmt in tree.body:
        line = getattr(stmt, "lineno", 1)
        if isinstance(stmt, ast.Import) and [(a.name, a.asname) for a in stmt.names] == [("bpy", None)]:
            continue
        if not isinstance(stmt, ast.Assign) or len(stmt.targets) != 1:
            raise OverrideError(line, "only assignments 'bpy.<data path> = <value>' are allowed")
        names = _path(stmt.targets[0])
        if names is None or not _rooted(names):
            raise OverrideError(line, "the assigned name must be a data path under bpy.context.scene, "
                                      "bpy.context.view_layer or bpy.data.<collection>, with attribute names "
                                      "and literal subscripts only")
        if not _literal(stmt.value):
            raise OverrideError(line, "the value must be a literal: a number, a text, True, False, None, "
                                      "or a tuple or list of those")


def check_lines(lines: list[str]) -> None:
    """Like check_source, for the setting's list of lines; the error names the item (1-based)."""
    if len(lines) > MAX_LINES:
        raise OverrideError(MAX_LINES + 1, f"at most {MAX_LINES} lines")
    try:
        check_source("\n".join(lines))
    except OverrideError as ex:
        physical, seen = ex.line - 1, 0
        for i, text in enumerate(lines):  # an item may hold several physical lines
            seen += text.count("\n") + 1
            if physical < seen:
                raise OverrideError(i + 1, ex.reason, lines[i]) from None
        raise
