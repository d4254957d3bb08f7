"""Validation of generator parameters, shared by every component constructor.

A wrong type raises ``TypeError`` and a value outside the legal range
``ValueError``, as Amaranth's own constructors do; both messages start with
the parameter's name so that the command line can report it in one line.
Integers may be any ``numbers.Integral`` (NumPy integers included) except
``bool``, and are returned as plain ``int`` so that Amaranth shapes built from
them are ordinary.
"""

from __future__ import annotations

import numbers

__all__ = ["check_int", "check_bool", "check_str", "check_choice"]


def check_int(name: str, value, *, minimum: int | None = 1, maximum: int | None = None,
              power_of_two: bool = False) -> int:
    """``value`` as an ``int`` within ``minimum..maximum`` (either bound may be
    ``None``), optionally a power of two."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, not {value!r}")
    value = int(value)
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        if minimum is not None and maximum is not None:
            bounds = f">= {minimum} and <= {maximum}"
        elif minimum is not None:
            bounds = f">= {minimum}"
        else:
            bounds = f"<= {maximum}"
        raise ValueError(f"{name} must be {bounds}, not {value!r}")
    if power_of_two and (value < 1 or value & (value - 1)):
        raise ValueError(f"{name} must be a power of two, not {value!r}")
    return value


def check_bool(name: str, value) -> bool:
    """``value``, which must be a ``bool``."""
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be a bool, not {value!r}")
    return value


def check_str(name: str, value) -> str:
    """``value``, which must be a ``str``."""
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a string, not {value!r}")
    return value


def check_choice(name: str, value, choices) -> str:
    """``value``, which must be one of the strings ``choices``."""
    if check_str(name, value) not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}, not {value!r}")
    return value
