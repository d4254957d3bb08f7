"""The unit registry: one place that maps a unit name to its RTL, golden model,
testbench and synthesis settings.

A unit registers itself where its component is defined::

    @unit("ccu_compress", golden="golden.radit.compress_fp16",
          testbench="sim.radit.tb_ccu_compress")
    class CCUCompress(wiring.Component):
        def __init__(self, *, lanes=16, saturate=True): ...

Parameters are read from the constructor signature: every keyword argument with
a default becomes a parameter named in upper case (``lanes`` -> ``LANES``) whose
default is that default, so the default lives in exactly one place. The
constructor validates values: a wrong type raises ``TypeError``, a bad value
``ValueError`` (:mod:`hdl.common.params`).

Units are discovered by importing every module below ``hdl.common``,
``hdl.radit``, ``hdl.ditto``, ``hdl.orbis``, ``hdl.systolic`` and ``hdl.accel``; adding a unit never touches
this file.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

__all__ = ["Param", "Unit", "unit", "units", "get", "UnknownUnit", "ParamError"]

GROUPS = ("common", "radit", "ditto", "orbis", "systolic", "accel")

_REGISTRY: dict[str, "Unit"] = {}
_DISCOVERED = False


class UnknownUnit(KeyError):
    """Raised for a unit name that no module registers."""

    def __str__(self):
        return self.args[0]


class ParamError(ValueError):
    """Raised for an unknown parameter name or a value that does not parse."""


@dataclass(frozen=True)
class Param:
    """One generator parameter, derived from a constructor keyword argument."""

    name: str  # upper case, as users write it (LANES)
    kwarg: str  # constructor keyword (lanes)
    default: Any

    @property
    def kind(self) -> type:
        return type(self.default)

    def parse(self, text: str) -> Any:
        """Parse a command-line value into the parameter's type."""
        kind = self.kind
        if kind is str:
            return text
        if kind is bool:
            low = text.strip().lower()
            if low in ("1", "true", "yes", "on", "0", "false", "no", "off"):
                return low in ("1", "true", "yes", "on")
        elif kind in (int, float):
            try:
                return int(text, 0) if kind is int else float(text)
            except ValueError:
                pass
        else:
            raise ParamError(f"parameter {self.name} has unsupported type {kind.__name__}")
        raise ParamError(f"parameter {self.name} expects {kind.__name__}, not {text!r}")


@dataclass(frozen=True)
class Unit:
    """A registered hardware unit.

    ``emit`` optionally replaces the default one-file Verilog conversion; it is
    called as ``emit(component, out_dir, name)`` and returns the written files
    (the systolic array uses it to emit its PE once and instantiate it).
    ``synth`` carries synthesis options for :mod:`synth.flow` (and
    ``"in_all": False`` to leave the unit out of ``make synth``'s default
    run, for a top the roll-ups price from its parts); ``sim``
    carries simulator options for :mod:`sim.runner` (``{"public": "top"}``:
    Verilator exposes only the top level, for designs whose every-signal
    public C++ model is too large to compile).
    """

    name: str
    component: type
    group: str
    golden: str | None = None
    testbench: str | None = None
    emit: Callable | None = None
    synth: dict = field(default_factory=dict)
    sim: dict = field(default_factory=dict)

    @property
    def summary(self) -> str:
        doc = inspect.getdoc(self.component) or ""
        return doc.splitlines()[0] if doc else ""

    @property
    def params(self) -> dict[str, Param]:
        sig = inspect.signature(self.component.__init__)
        out = {}
        for p in sig.parameters.values():
            if p.name == "self" or p.default is inspect.Parameter.empty:
                continue
            if p.kind not in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD):
                continue
            out[p.name.upper()] = Param(p.name.upper(), p.name, p.default)
        return out

    def defaults(self) -> dict[str, Any]:
        return {name: p.default for name, p in self.params.items()}

    def resolve(self, params: dict[str, Any] | None = None) -> dict[str, Any]:
        """Full parameter set (upper-case names) with ``params`` over the defaults.

        String values are parsed; unknown names raise :class:`ParamError`.
        """
        known = self.params
        out = self.defaults()
        for name, value in (params or {}).items():
            key = name.upper()
            if key not in known:
                raise ParamError(
                    f"unit {self.name} has no parameter {name!r} "
                    f"(parameters: {', '.join(known) or 'none'})")
            out[key] = known[key].parse(value) if isinstance(value, str) and known[key].kind is not str else value
        return out

    def build(self, params: dict[str, Any] | None = None):
        """Instantiate the component; a wrong type raises ``TypeError``, a bad value ``ValueError``."""
        full = self.resolve(params)
        known = self.params
        return self.component(**{known[k].kwarg: v for k, v in full.items()})

    def emit_verilog(self, out_dir: Path, params: dict[str, Any] | None = None) -> list[Path]:
        """Write this unit's Verilog (top module named after the unit) into ``out_dir``."""
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        component = self.build(params)
        if self.emit is not None:
            return list(self.emit(component, out_dir, self.name))
        from amaranth.back import verilog

        text = verilog.convert(component, name=self.name, emit_src=False)
        path = out_dir / f"{self.name}.v"
        path.write_text(text)
        return [path]


def unit(name: str, *, golden: str | None = None, testbench: str | None = None,
         emit: Callable | None = None, synth: dict | None = None, sim: dict | None = None):
    """Class decorator registering a ``wiring.Component`` as a unit."""

    def register(cls):
        module = cls.__module__.split(".")
        group = module[1] if len(module) > 2 and module[0] == "hdl" else "other"
        if name in _REGISTRY and _REGISTRY[name].component.__qualname__ != cls.__qualname__:
            raise ValueError(f"unit name {name!r} registered twice")
        _REGISTRY[name] = Unit(name, cls, group, golden, testbench, emit, dict(synth or {}), dict(sim or {}))
        return cls

    return register


def _discover() -> None:
    global _DISCOVERED
    if _DISCOVERED:
        return
    for group in GROUPS:
        pkg = importlib.import_module(f"hdl.{group}")
        for info in pkgutil.walk_packages(pkg.__path__, prefix=f"hdl.{group}."):
            importlib.import_module(info.name)
    _DISCOVERED = True


def units() -> dict[str, Unit]:
    """The project's units (those below ``hdl/``), sorted by group then name."""
    _discover()
    mine = [kv for kv in _REGISTRY.items() if kv[1].group in GROUPS]
    return dict(sorted(mine, key=lambda kv: (GROUPS.index(kv[1].group), kv[0])))


def get(name: str) -> Unit:
    """A unit by name; units registered outside ``hdl/`` (tests) are found too."""
    _discover()
    if name not in _REGISTRY:
        raise UnknownUnit(f"unknown unit {name!r} (units: {', '.join(units())})")
    return _REGISTRY[name]
