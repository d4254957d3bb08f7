"""Register maps and command formats: the one description of a top's host
interface, from which the AXI4-Lite slave (:class:`hdl.common.axi.AXI4LiteRegisters`),
the C header and the JSON description are all derived (``docs/SPEC.md``,
"Accelerator tops" / "Host interface").

A :class:`RegisterMap` is a list of word-aligned 32-bit :class:`Register`\\ s,
each with one access type:

=======  =====================================================================
``ro``   read-only: the hardware drives the value; a write answers SLVERR and
         changes nothing.
``rw``   read-write: the slave stores the value (``wstrb`` honoured per byte).
``wo``   write-only: a write pulses a strobe with the data (a start bit, a
         command-queue push); a read returns 0 with OKAY.
``w1c``  write-one-to-clear: the hardware sets bits, a write of 1 clears them
         (sticky status such as ``done`` or an interrupt cause).
=======  =====================================================================

A :class:`CommandFormat` describes the commands a top queues: named fields
packed into N 32-bit words, one of them an opcode with named values. Both
export ``to_json()`` and ``to_c_header()``; :func:`c_header` and
:func:`json_description` combine a unit's map and commands in one file.

Convention for units (read by ``ditgen header``): a component that has a host
interface exposes ``REGMAP`` (a :class:`RegisterMap`) and optionally
``COMMANDS`` (a :class:`CommandFormat`) as attributes of the *instance*: a
class attribute when the map is fixed, a property when it depends on the
constructor parameters (a parameter register reads back the configuration).
``ditgen header <unit> NAME=VALUE...`` builds the unit with those parameters
and reads ``instance.REGMAP`` / ``instance.COMMANDS``.

This module is plain Python (no RTL); :meth:`RegisterMap.layout` and
:meth:`CommandFormat.layout` give the Amaranth layouts the RTL uses.
"""

from __future__ import annotations

import json
import operator
import re
from typing import Iterable, Sequence

from .params import check_int, check_str

__all__ = ["ACCESS", "Field", "Register", "RegisterMap", "CommandFormat",
           "c_header", "json_description"]

ACCESS = ("ro", "rw", "wo", "w1c")
DATA_WIDTH = 32
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def _name(what: str, value) -> str:
    if not _IDENT.match(check_str(what, value)):
        raise ValueError(f"{what} must be a C identifier, not {value!r}")
    return value


def _doc(what: str, value) -> str:
    return check_str(f"{what} doc", value)


def _c_comment(text: str) -> str:
    return " ".join(text.replace("*/", "* /").split())


class Field:
    """A named bit field: ``width`` bits from bit ``lsb``.

    Parameters
    ----------
    name : str
        C identifier, unique within its register or command.
    lsb, width : int
        Position and size in bits.
    access : str or None
        One of :data:`ACCESS`, or None to inherit the register's. A register has
        one access type, so a field that names one must name the register's
        (it is then documentation); commands ignore it.
    reset : int
        Reset value of a register field; the value :meth:`CommandFormat.pack`
        uses for an omitted command field.
    doc : str
        One line for the C comment and the JSON.
    """

    __slots__ = ("_name", "_lsb", "_width", "_access", "_reset", "_doc")

    def __init__(self, name, lsb, width, access=None, reset=0, doc=""):
        self._name = _name("field name", name)
        what = f"field {name!r}"
        self._lsb = check_int(f"{what}: lsb", lsb, minimum=0)
        self._width = check_int(f"{what}: width", width, minimum=1)
        if access is not None and not isinstance(access, str):
            raise TypeError(f"{what}: access must be a string, not {access!r}")
        if access is not None and access not in ACCESS:
            raise ValueError(f"{what}: access must be one of {', '.join(ACCESS)}, not {access!r}")
        self._access = access
        self._reset = check_int(f"{what}: reset", reset, minimum=0, maximum=(1 << self._width) - 1)
        self._doc = _doc(what, doc)

    name = property(lambda self: self._name)
    lsb = property(lambda self: self._lsb)
    width = property(lambda self: self._width)
    access = property(lambda self: self._access)
    reset = property(lambda self: self._reset)
    doc = property(lambda self: self._doc)

    @property
    def msb(self) -> int:
        return self._lsb + self._width - 1

    @property
    def mask(self) -> int:
        """The field's bits in place (``((1 << width) - 1) << lsb``)."""
        return ((1 << self._width) - 1) << self._lsb

    def __repr__(self):
        return f"Field({self._name!r}, {self._lsb}, {self._width}, {self._access!r}, {self._reset})"

    def __eq__(self, other):
        return isinstance(other, Field) and repr(self) == repr(other) and self._doc == other._doc

    def __hash__(self):
        return hash(repr(self))


def _check_fields(what: str, fields: Sequence[Field], limit: int) -> tuple[Field, ...]:
    fields = tuple(fields)
    if not fields:
        raise ValueError(f"{what} needs at least one field")
    for f in fields:
        if not isinstance(f, Field):
            raise TypeError(f"{what}: fields must be Field objects, not {f!r}")
        if f.msb >= limit:
            raise ValueError(f"{what}: field {f.name!r} (bits {f.msb}:{f.lsb}) does not fit in {limit} bits")
    names = [f.name.upper() for f in fields]
    for n in names:
        if names.count(n) > 1:
            raise ValueError(f"{what}: field name {n.lower()!r} is used twice")
    ordered = sorted(fields, key=lambda f: f.lsb)
    for a, b in zip(ordered, ordered[1:]):
        if b.lsb <= a.msb:
            raise ValueError(f"{what}: fields {a.name!r} (bits {a.msb}:{a.lsb}) and "
                             f"{b.name!r} (bits {b.msb}:{b.lsb}) overlap")
    return fields


class Register:
    """One 32-bit-word register.

    Parameters
    ----------
    name : str
        C identifier, unique in the map (case-insensitive: the header upper-cases it).
    offset : int
        Byte address, a multiple of 4.
    fields : sequence of Field, or int
        The register's fields, or its width in bits (1..32) for a plain value.
    access : str
        One of :data:`ACCESS` (default ``"rw"``).
    doc : str
        One line for the C comment and the JSON.
    reset : int
        Reset value of a plain (width-only) register; a fielded register's
        reset comes from its fields.
    """

    __slots__ = ("_name", "_offset", "_fields", "_width", "_access", "_doc", "_reset")

    def __init__(self, name, offset, fields, access="rw", doc="", *, reset=None):
        self._name = _name("register name", name)
        what = f"register {name!r}"
        self._offset = check_int(f"{what}: offset", offset, minimum=0)
        if self._offset % 4:
            raise ValueError(f"{what}: offset {self._offset:#x} is not word-aligned")
        if not isinstance(access, str):
            raise TypeError(f"{what}: access must be a string, not {access!r}")
        if access not in ACCESS:
            raise ValueError(f"{what}: access must be one of {', '.join(ACCESS)}, not {access!r}")
        self._access = access
        self._doc = _doc(what, doc)
        if isinstance(fields, (str, bytes)) or not (isinstance(fields, Iterable) or _is_int(fields)):
            raise TypeError(f"{what}: fields must be a sequence of Field or a width, not {fields!r}")
        if _is_int(fields):
            self._width = check_int(f"{what}: width", fields, minimum=1, maximum=DATA_WIDTH)
            self._fields = ()
            self._reset = check_int(f"{what}: reset", 0 if reset is None else reset,
                                    minimum=0, maximum=(1 << self._width) - 1)
        else:
            self._fields = _check_fields(what, fields, DATA_WIDTH)
            for f in self._fields:
                if f.access is not None and f.access != access:
                    raise ValueError(f"{what}: field {f.name!r} has access {f.access!r} but the "
                                     f"register is {access!r} (one access type per register)")
            if reset is not None:
                raise ValueError(f"{what}: reset comes from the fields; do not pass reset")
            self._width = max(f.msb for f in self._fields) + 1
            self._reset = sum(f.reset << f.lsb for f in self._fields)

    name = property(lambda self: self._name)
    offset = property(lambda self: self._offset)
    fields = property(lambda self: self._fields)
    width = property(lambda self: self._width)
    access = property(lambda self: self._access)
    doc = property(lambda self: self._doc)
    reset = property(lambda self: self._reset)

    @property
    def mask(self) -> int:
        """Bits that exist (a fielded register's gaps read 0 and ignore writes)."""
        if not self._fields:
            return (1 << self._width) - 1
        return sum(f.mask for f in self._fields)

    def field(self, name: str) -> Field:
        for f in self._fields:
            if f.name.lower() == name.lower():
                return f
        raise KeyError(f"register {self._name!r} has no field {name!r} "
                       f"(fields: {', '.join(f.name for f in self._fields) or 'none'})")

    def __repr__(self):
        body = list(self._fields) if self._fields else self._width
        return f"Register({self._name!r}, {self._offset:#x}, {body!r}, {self._access!r})"


def _is_int(value) -> bool:
    if isinstance(value, bool):
        return False
    try:
        operator.index(value)
        return True
    except TypeError:
        return False


class RegisterMap:
    """A top's AXI4-Lite register map.

    Parameters
    ----------
    name : str
        C identifier; upper-cased it prefixes every ``#define``.
    registers : sequence of Register
        At distinct offsets, names unique ignoring case.
    version : int
        32-bit map version, exported as ``<PREFIX>_VERSION`` (a top also
        returns it from its ID/version register).
    addr_width : int
        AXI address bits the slave decodes (default 12: a 4 KiB window).
    """

    def __init__(self, name, registers, version=1, *, addr_width=12):
        self._name = _name("register map name", name)
        what = f"register map {name!r}"
        self._version = check_int(f"{what}: version", version, minimum=0, maximum=(1 << 32) - 1)
        self._addr_width = check_int(f"{what}: addr_width", addr_width, minimum=2, maximum=32)
        if isinstance(registers, (str, bytes)) or not isinstance(registers, Iterable):
            raise TypeError(f"{what}: registers must be a sequence of Register, not {registers!r}")
        regs = tuple(registers)
        if not regs:
            raise ValueError(f"{what} needs at least one register")
        seen_names, seen_offsets = {}, {}
        for r in regs:
            if not isinstance(r, Register):
                raise TypeError(f"{what}: registers must be Register objects, not {r!r}")
            key = r.name.upper()
            if key in seen_names:
                raise ValueError(f"{what}: register name {r.name!r} is used twice")
            if r.offset in seen_offsets:
                raise ValueError(f"{what}: registers {seen_offsets[r.offset]!r} and {r.name!r} "
                                 f"overlap at offset {r.offset:#x}")
            if r.offset + 4 > 1 << self._addr_width:
                raise ValueError(f"{what}: register {r.name!r} at {r.offset:#x} is outside the "
                                 f"{self._addr_width}-bit address space")
            seen_names[key] = r
            seen_offsets[r.offset] = r.name
        self._registers = tuple(sorted(regs, key=lambda r: r.offset))
        _check_unique_defines(what, self.c_defines())

    name = property(lambda self: self._name)
    version = property(lambda self: self._version)
    addr_width = property(lambda self: self._addr_width)
    registers = property(lambda self: self._registers)
    data_width = DATA_WIDTH

    @property
    def prefix(self) -> str:
        return self._name.upper()

    def __iter__(self):
        return iter(self._registers)

    def __len__(self):
        return len(self._registers)

    def __contains__(self, name):
        return any(r.name.upper() == str(name).upper() for r in self._registers)

    def __getitem__(self, name: str) -> Register:
        for r in self._registers:
            if r.name.upper() == str(name).upper():
                return r
        raise KeyError(f"register map {self._name!r} has no register {name!r} "
                       f"(registers: {', '.join(r.name for r in self._registers)})")

    def at(self, offset: int) -> Register | None:
        """The register at byte ``offset`` (None for an unknown address)."""
        for r in self._registers:
            if r.offset == offset:
                return r
        return None

    def layout(self, register: str):
        """The Amaranth shape of ``register``'s value: a ``FlexibleLayout``
        with one member per field (so ``port.start`` reads a field), or
        ``unsigned(width)`` for a plain register."""
        from amaranth.hdl import unsigned
        from amaranth.lib import data

        r = self[register]
        if not r.fields:
            return unsigned(r.width)
        return data.FlexibleLayout(r.width, {f.name: data.Field(unsigned(f.width), f.lsb) for f in r.fields})

    def to_dict(self) -> dict:
        return {
            "name": self._name,
            "version": self._version,
            "addr_width": self._addr_width,
            "data_width": DATA_WIDTH,
            "registers": [{
                "name": r.name, "offset": r.offset, "access": r.access, "width": r.width,
                "mask": r.mask, "reset": r.reset, "doc": r.doc,
                "fields": [{"name": f.name, "lsb": f.lsb, "width": f.width, "mask": f.mask,
                            "access": f.access or r.access, "reset": f.reset, "doc": f.doc}
                           for f in r.fields],
            } for r in self._registers],
        }

    def to_json(self, **kw) -> str:
        kw.setdefault("indent", 1)
        return json.dumps(self.to_dict(), **kw)

    def c_defines(self) -> list[str]:
        """The ``#define`` and comment lines of this map (no guard)."""
        p = self.prefix
        out = [f"/* Register map {self._name}, version {self._version:#010x}: "
               "32-bit registers at byte offsets. Access: ro read-only (a write answers SLVERR), "
               "rw read-write, wo write-only (reads 0), w1c write 1 to clear. */",
               f"#define {p}_VERSION 0x{self._version:08X}u",
               f"#define {p}_ADDR_WIDTH {self._addr_width}u"]
        for r in self._registers:
            rp = f"{p}_{r.name.upper()}"
            out.append("")
            doc = f": {_c_comment(r.doc)}" if r.doc else ""
            out.append(f"/* {r.name} ({r.access}){doc} */")
            out.append(f"#define {rp}_OFFSET 0x{r.offset:03X}u")
            out.append(f"#define {rp}_WIDTH {r.width}u")
            out.append(f"#define {rp}_MASK 0x{r.mask:08X}u")
            out.append(f"#define {rp}_RESET 0x{r.reset:08X}u")
            for f in r.fields:
                fp = f"{rp}_{f.name.upper()}"
                doc = f": {_c_comment(f.doc)}" if f.doc else ""
                out.append(f"/* {r.name}.{f.name} bits {f.msb}:{f.lsb} ({f.access or r.access}){doc} */")
                out.append(f"#define {fp}_SHIFT {f.lsb}u")
                out.append(f"#define {fp}_WIDTH {f.width}u")
                out.append(f"#define {fp}_MASK 0x{f.mask:08X}u")
        return out

    def to_c_header(self) -> str:
        return _wrap_header(self._name, self.c_defines())


class CommandFormat:
    """A command: named fields packed into ``words`` 32-bit words.

    Parameters
    ----------
    name : str
        C identifier; upper-cased it prefixes the ``#define``\\ s.
    words : int
        Words per command; the host pushes them in order, word 0 first.
    fields : sequence of Field
        Bit positions over the whole command (bit 32·w + b is bit b of word
        w); no field straddles a word boundary.
    opcodes : mapping of str to int
        Named values of the ``opcode_field``, exported as ``<PREFIX>_OP_<NAME>``.
    opcode_field : str
        The field that holds the opcode (default ``"opcode"``; ignored
        without opcodes).
    doc : str
    """

    def __init__(self, name, words, fields, opcodes=None, *, opcode_field="opcode", doc=""):
        self._name = _name("command format name", name)
        what = f"command format {name!r}"
        self._words = check_int(f"{what}: words", words, minimum=1)
        self._fields = _check_fields(what, fields, 32 * self._words)
        for f in self._fields:
            if f.lsb // 32 != f.msb // 32:
                raise ValueError(f"{what}: field {f.name!r} (bits {f.msb}:{f.lsb}) straddles a word boundary")
        self._doc = _doc(what, doc)
        opcodes = dict(opcodes or {})
        self._opcode_field = None
        if opcodes:
            _name(f"{what}: opcode_field", opcode_field)
            try:
                self._opcode_field = self.field(opcode_field)
            except KeyError:
                raise ValueError(f"{what}: opcode_field {opcode_field!r} names no field") from None
            values = {}
            for op, value in opcodes.items():
                _name(f"{what}: opcode name", op)
                v = check_int(f"{what}: opcode {op!r}", value, minimum=0,
                              maximum=(1 << self._opcode_field.width) - 1)
                if v in values:
                    raise ValueError(f"{what}: opcodes {values[v]!r} and {op!r} share value {v}")
                values[v] = op
        self._opcodes = opcodes
        _check_unique_defines(what, self.c_defines())

    name = property(lambda self: self._name)
    words = property(lambda self: self._words)
    fields = property(lambda self: self._fields)
    opcodes = property(lambda self: dict(self._opcodes))
    doc = property(lambda self: self._doc)
    width = property(lambda self: 32 * self._words)

    @property
    def prefix(self) -> str:
        return self._name.upper()

    @property
    def opcode_field(self) -> Field | None:
        return self._opcode_field

    def field(self, name: str) -> Field:
        for f in self._fields:
            if f.name.lower() == name.lower():
                return f
        raise KeyError(f"command format {self._name!r} has no field {name!r} "
                       f"(fields: {', '.join(f.name for f in self._fields)})")

    def opcode(self, name: str) -> int:
        if name not in self._opcodes:
            raise KeyError(f"command format {self._name!r} has no opcode {name!r} "
                           f"(opcodes: {', '.join(self._opcodes) or 'none'})")
        return self._opcodes[name]

    def pack(self, **values) -> list[int]:
        """The command's words; omitted fields take their reset value, the
        opcode may be given by name."""
        names = {f.name for f in self._fields}
        for key in values:
            if key not in names:
                raise KeyError(f"command format {self._name!r} has no field {key!r} "
                               f"(fields: {', '.join(sorted(names))})")
        word = 0
        for f in self._fields:
            v = values.get(f.name, f.reset)
            if isinstance(v, str) and self._opcode_field is f:
                v = self.opcode(v)
            v = check_int(f"command field {f.name!r}", v, minimum=0, maximum=(1 << f.width) - 1)
            word |= v << f.lsb
        return [(word >> (32 * w)) & 0xFFFFFFFF for w in range(self._words)]

    def unpack(self, words: Sequence[int]) -> dict:
        """Field values of a command given as its words."""
        words = list(words)
        if len(words) != self._words:
            raise ValueError(f"command format {self._name!r} has {self._words} words, not {len(words)}")
        whole = 0
        for w, v in enumerate(words):
            whole |= (check_int(f"command word {w}", v, minimum=0, maximum=0xFFFFFFFF)) << (32 * w)
        return {f.name: (whole >> f.lsb) & ((1 << f.width) - 1) for f in self._fields}

    def layout(self):
        """The Amaranth ``StructLayout`` of a decoded command: the fields only,
        in declaration order (first field in the LSBs); reserved bits between
        fields are not carried."""
        from amaranth.hdl import unsigned
        from amaranth.lib import data

        return data.StructLayout({f.name: unsigned(f.width) for f in self._fields})

    def to_dict(self) -> dict:
        return {
            "name": self._name, "words": self._words, "doc": self._doc,
            "opcode_field": self._opcode_field.name if self._opcode_field else None,
            "opcodes": dict(self._opcodes),
            "fields": [{"name": f.name, "word": f.lsb // 32, "lsb": f.lsb % 32, "width": f.width,
                        "mask": ((1 << f.width) - 1) << (f.lsb % 32), "reset": f.reset, "doc": f.doc}
                       for f in self._fields],
        }

    def to_json(self, **kw) -> str:
        kw.setdefault("indent", 1)
        return json.dumps(self.to_dict(), **kw)

    def c_defines(self) -> list[str]:
        p = self.prefix
        doc = f" {_c_comment(self._doc)}" if self._doc else ""
        out = [f"/* Command format {self._name}: {self._words} 32-bit word(s) pushed in order, "
               f"word 0 first.{doc} */",
               f"#define {p}_WORDS {self._words}u"]
        for op, v in self._opcodes.items():
            out.append(f"#define {p}_OP_{op.upper()} {v}u")
        for f in self._fields:
            fp = f"{p}_{f.name.upper()}"
            doc = f": {_c_comment(f.doc)}" if f.doc else ""
            out.append(f"/* {f.name}: word {f.lsb // 32} bits {f.msb % 32}:{f.lsb % 32}{doc} */")
            out.append(f"#define {fp}_WORD {f.lsb // 32}u")
            out.append(f"#define {fp}_SHIFT {f.lsb % 32}u")
            out.append(f"#define {fp}_WIDTH {f.width}u")
            out.append(f"#define {fp}_MASK 0x{((1 << f.width) - 1) << (f.lsb % 32):08X}u")
        return out

    def to_c_header(self) -> str:
        return _wrap_header(self._name, self.c_defines())


_DEFINE = re.compile(r"#define (\w+)")


def _check_unique_defines(what: str, lines: list[str]) -> None:
    seen = set()
    for line in lines:
        m = _DEFINE.match(line)
        if m:
            if m.group(1) in seen:
                raise ValueError(f"{what}: C macro {m.group(1)} would be defined twice; rename a register or field")
            seen.add(m.group(1))


def _wrap_header(name: str, lines: list[str]) -> str:
    _check_unique_defines(name, lines)
    guard = f"{name.upper()}_H"
    body = "\n".join(lines)
    return (f"/* Generated by ditgen from the register description; do not edit. */\n"
            f"#ifndef {guard}\n#define {guard}\n\n#include <stdint.h>\n\n{body}\n\n#endif /* {guard} */\n")


def c_header(unit: str, regmap: RegisterMap, commands: CommandFormat | None = None) -> str:
    """One C header for a unit: its register map and, if any, its command format."""
    _name("unit name", unit)
    lines = regmap.c_defines()
    if commands is not None:
        lines += [""] + commands.c_defines()
    return _wrap_header(unit, lines)


def json_description(unit: str, regmap: RegisterMap, commands: CommandFormat | None = None, **kw) -> str:
    """The unit's register map and command format as one JSON document."""
    kw.setdefault("indent", 1)
    doc = {"unit": unit, "regmap": regmap.to_dict(),
           "commands": commands.to_dict() if commands is not None else None}
    return json.dumps(doc, **kw)
