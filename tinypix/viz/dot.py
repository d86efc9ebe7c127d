"""The autograd graph as Graphviz DOT text, rendered to a picture when Graphviz is installed."""
from __future__ import annotations

import os
import shutil
import subprocess
import warnings
from typing import TYPE_CHECKING

from ..tensor import Tensor

if TYPE_CHECKING:
    from ..autograd import Function

FORMATS = ("png", "svg", "pdf", "dot")
_STYLE = {"op": 'shape=box, style="rounded,filled", fillcolor="#dbe8f6"',
          "param": 'shape=ellipse, style=filled, fillcolor="#fdf1c7"',
          "grad": 'shape=ellipse, style=filled, fillcolor="#d9f2d9"',
          "const": 'shape=ellipse, style=filled, fillcolor="#eeeeee"',
          "output": 'shape=doubleoctagon, style=filled, fillcolor="#f6d5d5"'}


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def graph(tensor: Tensor, path: str | os.PathLike[str] | None = None, format: str = "png",
          params: dict[str, Tensor] | None = None) -> str:
    """The autograd graph that produced ``tensor``, as Graphviz DOT text.

    One box per op call (its Function class and output shape), one ellipse per leaf tensor (its
    shape and whether it requires grad; parameters by name when ``params`` is given). Arrows
    follow the forward pass; backward runs them in reverse.

    Args:
        tensor: where to start, usually the loss.
        path: a file to write, or None. Its extension (.png, .svg, .pdf, or .dot for the text
            itself) picks the format; without one ``format`` is used and appended. Rendering needs
            Graphviz's ``dot``; without it the DOT text is written to ``<path stem>.dot`` and a
            warning says how to render it.
        format: 'png', 'svg', 'pdf' or 'dot'.
        params: {name: Tensor} to label leaves, e.g. ``dict(model.named_parameters())`` (add
            ``model.named_buffers()`` for batch-norm statistics, and the input and target).

    Returns:
        The DOT text.
    """
    if not isinstance(tensor, Tensor):
        raise TypeError(f"graph: expected a Tensor, got {type(tensor).__name__}")
    if format not in FORMATS:
        raise ValueError(f"graph: format must be one of {FORMATS}, got {format!r}")
    names = {id(t): name for name, t in (params or {}).items()}
    lines, ids = [], {}

    def node(obj: object, label: str, kind: str) -> str:
        if id(obj) not in ids:  # the walk holds every object, so ids stay unique
            ids[id(obj)] = f"n{len(ids)}"
            lines.append(f"  {ids[id(obj)]} [label={_quote(label)}, {_STYLE[kind]}];")
        return ids[id(obj)]

    def leaf(t: Tensor) -> str:
        kind = ("param" if id(t) in names else "grad") if t.requires_grad else "const"
        grad = "requires grad" if t.requires_grad else "no grad"
        return node(t, f"{names.get(id(t), 'tensor')}\n{t.shape}\n{grad}", kind)

    def op(ctx: Function) -> str:
        shapes = ", ".join(str(tuple(shape)) for shape, _ in ctx._out_meta)
        return node(ctx, f"{type(ctx).__name__}\n{shapes}", "op")

    if tensor._ctx is None:  # no op recorded: the graph is the tensor alone
        leaf(tensor)
    else:
        out = node(tensor, f"output\n{tensor.shape}", "output")
        lines.append(f"  {op(tensor._ctx)} -> {out};")
    stack, seen = [tensor._ctx] if tensor._ctx is not None else [], set()
    while stack:  # iterative: a 10,000-op chain must not hit Python's recursion limit
        ctx = stack.pop()
        if id(ctx) in seen:
            continue
        seen.add(id(ctx))
        for t, (parent, _) in zip(ctx.inputs, ctx.edges):  # the node each input came from when
            if t is None:                                    # the op ran (an in-place op may
                continue                                     # have rebound the tensor since)
            if parent is None:
                lines.append(f"  {leaf(t)} -> {op(ctx)};")
            else:
                lines.append(f"  {op(parent)} -> {op(ctx)};")
                stack.append(parent)
    text = "\n".join(["digraph autograd {", "  graph [ranksep=0.3, nodesep=0.25];",
                      '  node [fontname="Helvetica", fontsize=10];'] + lines + ["}"])
    if path is not None:
        _write_graph(text, os.fspath(path), format)
    return text


def _write_graph(text: str, path: str, format: str) -> None:
    stem, ext = os.path.splitext(path)
    fmt = ext[1:].lower() if ext else format
    path = path if ext else f"{path}.{format}"
    if fmt not in FORMATS:
        raise ValueError(f"graph: cannot write {path!r}; use an extension among {FORMATS}")
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    dot = shutil.which("dot")
    if fmt == "dot" or dot is None:
        with open(f"{stem}.dot", "w") as f:
            f.write(text)
        if fmt != "dot":
            warnings.warn(f"graph: Graphviz's `dot` program was not found, so the graph was written as "
                          f"DOT text to {stem}.dot; install Graphviz (apt-get install graphviz, brew "
                          f"install graphviz or conda install graphviz) and run "
                          f"`dot -T{fmt} {stem}.dot -o {path}` to draw it", stacklevel=3)
        return
    subprocess.run([dot, f"-T{fmt}", "-o", path], input=text.encode(), check=True, capture_output=True)
