"""Compile one field rule into one callable: raw value -> output value, ``Invalid`` or ``OMIT``.

Each step is checked against the kind of value it receives (``any`` raw JSON, ``string``,
``decimal``, ``timestamp``), so a spec that rounds a timestamp fails at load instead of per record.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final

from schemas.pipeline import (
    CharacterMask,
    DecimalParse,
    FieldRule,
    KeyedHash,
    Lowercase,
    MaskEmail,
    MaskPhone,
    ParseStep,
    Redact,
    Replace,
    RoundDecimal,
    StringParse,
    TimestampParse,
    TransformStep,
    Trim,
    TruncateTimestamp,
    Uppercase,
)
from transforms import emails, hashing, money, phones, text, timestamps
from transforms.errors import SpecError
from transforms.invalid import MISSING_REQUIRED, OMIT, Invalid

Step = Callable[[Any], Any]

ANY: Final = "any"
STRING: Final = "string"
DECIMAL: Final = "decimal"
TIMESTAMP: Final = "timestamp"
TEXT_INPUTS: Final = frozenset({ANY, STRING})
# Steps whose work costs more than a cache lookup; a field holding one of them gets a result cache.
CACHEABLE_OPS: Final = frozenset(
    {"timestamp", "decimal", "mask_email", "mask_phone", "mask", "hash"}
)


@dataclass(frozen=True, slots=True)
class FieldPlan:
    """A compiled field rule."""

    source: str
    target: str
    compute: Step  # raw (never None) -> output, Invalid, or OMIT
    parse: Step  # raw -> the parsed value that filters compare, or Invalid
    parsed_kind: str
    missing: Any  # the output when the source is missing or null: a value, OMIT, or Invalid
    cacheable: bool


def _identity(value: Any) -> Any:
    return value


def compile_parse(step: ParseStep | None) -> tuple[Step, str]:
    """The callable of a parse step and the kind of value it produces."""
    if isinstance(step, TimestampParse):
        return timestamps.make_parse(step.timezone), TIMESTAMP
    if isinstance(step, DecimalParse):
        return money.parse_decimal, DECIMAL
    if isinstance(step, StringParse):
        return text.parse_string, STRING
    return _identity, ANY


def _need(step: TransformStep, kind: str, allowed: frozenset[str], fix: str) -> None:
    if kind not in allowed:
        raise SpecError(f"step {step.op!r} cannot take a {kind} value; {fix}")


def compile_transform(step: TransformStep, kind: str, hash_secret: bytes) -> tuple[Step, str]:
    """The callable of a transform step given the kind it receives, and the kind it produces."""
    as_text = "use it on a field without `parse` or with `parse: string`"
    if isinstance(step, MaskEmail):
        _need(step, kind, TEXT_INPUTS, as_text)
        return emails.mask_email, STRING
    if isinstance(step, MaskPhone):
        _need(step, kind, TEXT_INPUTS, as_text)
        return phones.mask_phone, STRING
    if isinstance(step, CharacterMask):
        _need(step, kind, TEXT_INPUTS, as_text)
        return text.make_mask(step.char, step.count, step.from_end, step.ignore), STRING
    if isinstance(step, Trim | Lowercase | Uppercase):
        _need(step, kind, TEXT_INPUTS, as_text)
        ops = {"trim": text.trim, "lowercase": text.lowercase, "uppercase": text.uppercase}
        return ops[step.op], STRING
    if isinstance(step, TruncateTimestamp):
        _need(step, kind, frozenset({TIMESTAMP}), "add `parse: timestamp` to the field")
        return timestamps.make_truncate(step.unit), TIMESTAMP
    if isinstance(step, RoundDecimal):
        _need(step, kind, frozenset({DECIMAL}), "add `parse: decimal` to the field")
        return money.make_round(step.places, step.mode), DECIMAL
    if isinstance(step, KeyedHash):
        return hashing.make_hash(hash_secret), STRING
    if isinstance(step, Replace):
        constant = step.value
        return (lambda _value: constant), ANY
    if isinstance(step, Redact):
        return (lambda _value: OMIT), ANY
    raise SpecError(f"step {step.op!r} is not implemented")  # pragma: no cover - schema forbids it


def chain(steps: Sequence[Step]) -> Step:
    """Compose steps left to right, stopping at the first ``Invalid``."""
    if not steps:
        return _identity
    if len(steps) == 1:
        return steps[0]
    if len(steps) == 2:
        first, second = steps

        def two(value: Any) -> Any:
            value = first(value)
            return value if value.__class__ is Invalid else second(value)

        return two

    def many(value: Any) -> Any:
        for step in steps:
            value = step(value)
            if value.__class__ is Invalid:
                return value
        return value

    return many


def compile_field(rule: FieldRule, hash_secret: bytes) -> FieldPlan:
    """Compile a field rule; raises SpecError (without a file name) when the steps do not fit."""
    parse, parsed_kind = compile_parse(rule.parse)
    if isinstance(rule.parse, TimestampParse) and not rule.transform:
        # The common case gets the fused step, which passes canonical input through untouched.
        steps: list[Step] = [timestamps.make_parse_and_format(rule.parse.timezone)]
        kind = STRING
    else:
        steps = [] if rule.parse is None else [parse]
        kind = parsed_kind
        for index, step in enumerate(rule.transform):
            try:
                fn, kind = compile_transform(step, kind, hash_secret)
            except SpecError as exc:
                raise SpecError(f"transform[{index}]: {exc}") from None
            steps.append(fn)
        if kind == TIMESTAMP:
            steps.append(timestamps.format_utc)
    compute = chain(steps)
    ops = {step.op for step in rule.transform} | ({rule.parse.op} if rule.parse else set())
    return FieldPlan(
        source=rule.source,
        target=rule.target,
        compute=compute,
        parse=parse,
        parsed_kind=parsed_kind,
        missing=_missing_output(rule, compute),
        cacheable=bool(ops & CACHEABLE_OPS),
    )


def _missing_output(rule: FieldRule, compute: Step) -> Any:
    if not rule.has_default:
        return MISSING_REQUIRED if rule.required else OMIT
    if rule.default is None:
        return None
    # The default is an input value: it goes through the field's own steps once, here, so that a
    # default that the steps reject is a load error rather than an error on every record.
    output = compute(rule.default)
    if output.__class__ is Invalid:
        raise SpecError(
            f"the default fails the field's own steps ({output.reason}); fix the default"
        )
    return output
