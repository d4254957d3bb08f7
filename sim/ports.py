"""Port layouts from one source: the component's signature.

At build time :func:`export` walks a component's ``wiring.Signature`` and
writes, beside the Verilog, every member with its Verilog name, direction and
shape; a ``data.Layout`` keeps its fields with offsets, widths, signedness and
array lengths, an enum its members. Amaranth's own
``ComponentMetadata.as_json()`` (names, directions, widths of the flattened
ports) is stored alongside. A testbench reads the file back through
:func:`sim.env.ports` and packs and unpacks payloads with :class:`Packer`,
so no layout, field order or width formula is ever retyped in ``sim/``.

The file format (``<unit>.ports.json``)::

    {"unit": ..., "params": {...}, "metadata": <ComponentMetadata.as_json()>,
     "ports": {member: <entry>}}

    <entry> = {"kind": "stream", "dir": "in"|"out", "valid": name, "ready": name,
               "payload": {"name": name, "shape": <shape>}}
            | {"kind": "port", "dir": "in"|"out", "name": name, "shape": <shape>}
            | {"kind": "interface", "members": {member: <entry>}}
    <shape> = {"kind": "int", "width": w, "signed": s}
            | {"kind": "enum", "width": w, "signed": s, "members": {name: value}}
            | {"kind": "struct", "width": w, "fields": [{"name", "offset", "shape"}]}
            | {"kind": "array", "width": w, "length": n, "stride": e, "elem": <shape>}

``dir`` is seen from the design: ``"in"`` streams are driven by the
testbench (sources), ``"out"`` streams are consumed by it (sinks).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["export", "write", "load", "Packer", "Stream", "Port", "Interface"]


# --------------------------------------------------------------------------
# Build side: signature -> JSON


def describe_shape(shape) -> dict:
    """JSON description of an Amaranth shape-castable (layouts recursively)."""
    import enum

    from amaranth.hdl import Shape
    from amaranth.lib import data

    if isinstance(shape, data.ArrayLayout):
        return {"kind": "array", "width": shape.size, "length": shape.length,
                "stride": Shape.cast(shape.elem_shape).width, "elem": describe_shape(shape.elem_shape)}
    if isinstance(shape, data.Layout):
        fields = [{"name": name, "offset": f.offset, "shape": describe_shape(f.shape)} for name, f in shape]
        fields.sort(key=lambda f: f["offset"])
        return {"kind": "struct", "width": shape.size, "fields": fields}
    cast = Shape.cast(shape)
    if isinstance(shape, type) and issubclass(shape, enum.Enum):
        return {"kind": "enum", "width": cast.width, "signed": cast.signed,
                "members": {m.name: int(m.value) for m in shape}}
    return {"kind": "int", "width": cast.width, "signed": cast.signed}


def export(component, *, unit: str | None = None, params: dict | None = None) -> dict:
    """Every member of ``component``'s signature with its Verilog name and shape."""
    from amaranth.lib import stream, wiring

    def entry(path: tuple, member) -> dict:
        name = "__".join(path)
        if member.is_port:
            return {"kind": "port", "dir": "in" if member.flow == wiring.In else "out", "name": name,
                    "shape": describe_shape(member.shape)}
        # The signature of an In member is already flipped: its members' flows
        # are those seen from outside the component.
        sig = member.signature
        members = {n: entry(path + (n,), m) for n, m in sig.members.items()}
        if isinstance(sig, stream.Signature):
            payload = members["payload"]
            return {"kind": "stream", "dir": payload["dir"], "valid": members["valid"]["name"],
                    "ready": members["ready"]["name"],
                    "payload": {"name": payload["name"], "shape": payload["shape"]}}
        return {"kind": "interface", "members": members}

    ports = {n: entry((n,), m) for n, m in component.signature.members.items()}
    return {"unit": unit, "params": params or {},
            "metadata": wiring.ComponentMetadata(component).as_json(), "ports": ports}


def write(component, path: Path, *, unit: str | None = None, params: dict | None = None) -> Path:
    path = Path(path)
    path.write_text(json.dumps(export(component, unit=unit, params=params), indent=1, default=str))
    return path


# --------------------------------------------------------------------------
# Testbench side: JSON -> packers


class Packer:
    """Packs and unpacks one shape described by :func:`describe_shape`.

    * an integer: ``pack(v)`` (range-checked, two's complement for signed),
      ``unpack(word)`` returns a Python int (sign-extended for signed);
    * an enum: as an integer; ``pack`` also takes a member name;
    * a struct: ``pack(field=value, ...)`` (missing fields are 0; unknown ones
      raise), ``unpack`` returns a dict; ``packer["field"]`` is the field's
      packer (``.width``, ``.signed``, ``.offset``);
    * an array: ``pack(sequence)`` of exactly ``length`` elements,
      ``unpack`` returns an int64 array (a list of dicts for an array of
      structs); ``packer.elem`` is the element's packer.

    First field / element 0 in the least significant bits, as Amaranth lays
    them out.
    """

    def __init__(self, shape: dict, *, offset: int = 0, name: str = "payload"):
        self.shape = shape
        self.kind = shape["kind"]
        self.width = int(shape["width"])
        self.offset = offset
        self.name = name
        self.signed = bool(shape.get("signed", False))
        self.mask = (1 << self.width) - 1
        if self.kind == "struct":
            self.fields = {f["name"]: Packer(f["shape"], offset=f["offset"], name=f["name"])
                           for f in shape["fields"]}
        elif self.kind == "array":
            self.length = int(shape["length"])
            self.stride = int(shape["stride"])
            self.elem = Packer(shape["elem"], name=f"{name}[]")
        elif self.kind == "enum":
            self.members = dict(shape["members"])

    def __getitem__(self, name: str) -> "Packer":
        if self.kind != "struct":
            raise TypeError(f"{self.name} is a {self.kind}, not a struct")
        return self.fields[name]

    def __contains__(self, name: str) -> bool:
        return self.kind == "struct" and name in self.fields

    @property
    def min(self) -> int:
        return -(1 << (self.width - 1)) if self.signed else 0

    @property
    def max(self) -> int:
        return (1 << (self.width - 1)) - 1 if self.signed else self.mask

    def pack(self, value: Any = None, /, **fields) -> int:
        if self.kind == "struct":
            if value is not None:
                if fields or not isinstance(value, dict):
                    raise TypeError(f"{self.name}: pass a struct as keyword fields or one dict")
                fields = value
            unknown = set(fields) - set(self.fields)
            if unknown:
                raise KeyError(f"{self.name} has no field(s) {sorted(unknown)} (fields: {list(self.fields)})")
            word = 0
            for fname, f in self.fields.items():
                if fname in fields:
                    word |= f.pack(fields[fname]) << f.offset
            return word
        if fields:
            raise TypeError(f"{self.name} is a {self.kind}, not a struct: no fields {sorted(fields)}")
        if self.kind == "array":
            values = list(value)
            if len(values) != self.length:
                raise ValueError(f"{self.name}: {len(values)} elements for an array of {self.length}")
            word = 0
            for n, v in enumerate(values):
                word |= self.elem.pack(v) << (n * self.stride)
            return word
        if self.kind == "enum" and isinstance(value, str):
            value = self.members[value]
        if hasattr(value, "value") and not isinstance(value, (int, np.integer)):
            value = value.value  # an enum member
        v = int(value)
        if not self.min <= v <= self.max:
            raise ValueError(f"{self.name}: {v} does not fit {'signed' if self.signed else 'unsigned'}"
                             f"({self.width})")
        return v & self.mask

    def unpack(self, word: int) -> Any:
        word = int(word) & self.mask
        if self.kind == "struct":
            return {n: f.unpack(word >> f.offset) for n, f in self.fields.items()}
        if self.kind == "array":
            vals = [self.elem.unpack(word >> (n * self.stride)) for n in range(self.length)]
            if self.elem.kind in ("int", "enum") and self.elem.width <= 63:
                return np.array(vals, dtype=np.int64)
            return vals
        if self.signed and word >> (self.width - 1):
            return word - (1 << self.width)
        return word

    def random(self, rng) -> int:
        """A random raw word (garbage for idle cycles and padding)."""
        return rng.getrandbits(self.width) if self.width else 0

    def __repr__(self):
        return f"Packer({self.name}: {self.kind}, {self.width} bits)"


class Port:
    """A plain port: ``name`` in Verilog, ``dir``, and its :class:`Packer`."""

    def __init__(self, entry: dict):
        self.name = entry["name"]
        self.dir = entry["dir"]
        self.shape = Packer(entry["shape"], name=self.name)
        self.width = self.shape.width


class Stream:
    """An ``amaranth.lib.stream`` member: its signal names and payload packer."""

    def __init__(self, member: str, entry: dict):
        self.member = member
        self.dir = entry["dir"]
        self.valid = entry["valid"]
        self.ready = entry["ready"]
        self.prefix = self.valid[: -len("__valid")]
        self.payload_name = entry["payload"]["name"]
        self.payload = Packer(entry["payload"]["shape"], name=f"{member}.payload")


class Interface:
    """A nested interface: ``iface["en"]`` is its member."""

    def __init__(self, members: dict):
        self.members = members

    def __getitem__(self, name):
        return self.members[name]

    def __iter__(self):
        return iter(self.members.values())


def _wrap(member: str, entry: dict):
    if entry["kind"] == "stream":
        return Stream(member, entry)
    if entry["kind"] == "port":
        return Port(entry)
    return Interface({n: _wrap(n, e) for n, e in entry["members"].items()})


def load(path: Path) -> dict:
    """``{member: Stream | Port | Interface}`` from a ports file."""
    data = json.loads(Path(path).read_text())
    return {n: _wrap(n, e) for n, e in data["ports"].items()}


def flat(ports: dict):
    """Every Stream and Port (interfaces opened) in declaration order."""
    for p in ports.values():
        if isinstance(p, Interface):
            yield from flat(p.members)
        else:
            yield p
