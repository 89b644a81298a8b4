"""Input checks for the public API of :mod:`deep`.

Modelled on ``kornia/core/check.py`` (``KORNIA_CHECK_SHAPE``), except that the errors subclass the
builtin ``ValueError`` / ``TypeError`` so that ``except ValueError`` catches them. Every message
names the argument, what was expected and what came.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

__all__ = ["ShapeError", "check_shape", "check_float_tensor", "check_tensor"]


class ShapeError(ValueError):
    """A tensor has the wrong rank or the wrong size along a named dimension."""


def check_tensor(x, name: str = "input") -> torch.Tensor:
    """Raise ``TypeError`` unless ``x`` is a ``torch.Tensor``; return it."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"`{name}` must be a torch.Tensor, but got {type(x).__name__}")
    return x


def check_float_tensor(x, name: str = "input") -> torch.Tensor:
    """Raise ``TypeError`` unless ``x`` is a floating-point ``torch.Tensor``; return it."""
    check_tensor(x, name)
    if not x.is_floating_point():
        raise TypeError(
            f"`{name}` must be a floating-point tensor, but got dtype {x.dtype}; "
            f"convert it with `{name}.float()`"
        )
    return x


def check_shape(x, shape: Sequence[str | int], name: str = "input") -> torch.Tensor:
    """Check the rank and the fixed sizes of a tensor.

    Parameters
    ----------
    x : torch.Tensor
        The tensor to check.
    shape : sequence of str or int
        One entry per dimension. A string (``"N"``, ``"C"``, ``"H"``, ...) accepts any size; an
        int requires that exact size. A leading ``"*"`` accepts any number of extra leading
        dimensions.
    name : str
        Argument name used in the message.

    Returns
    -------
    x : torch.Tensor
        The same tensor, for chaining.

    Raises
    ------
    TypeError
        If ``x`` is not a tensor.
    ShapeError
        If the rank or a fixed size differs; the message gives expected and actual shapes.

    Examples
    --------
    >>> check_shape(torch.zeros(2, 3, 4, 5), ["N", "C", "H", "W"]).shape
    torch.Size([2, 3, 4, 5])
    >>> check_shape(torch.zeros(4, 5), ["N", 4])
    Traceback (most recent call last):
    ...
    deep._checks.ShapeError: `input` must have shape [N, 4], but got shape (4, 5)
    """
    check_tensor(x, name)
    dims = list(shape)
    wanted = "[" + ", ".join(str(d) for d in dims) + "]"
    got = tuple(x.shape)
    if dims and dims[0] == "*":
        rest = dims[1:]
        ok = x.dim() >= len(rest)
        tail = got[len(got) - len(rest) :] if ok else ()
    else:
        rest = dims
        ok = x.dim() == len(rest)
        tail = got
    if ok:
        for d, s in zip(rest, tail, strict=True):
            if isinstance(d, int) and d != s:
                ok = False
                break
    if not ok:
        raise ShapeError(f"`{name}` must have shape {wanted}, but got shape {got}")
    return x
