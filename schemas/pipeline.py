"""The pipeline specification: what a spec file says, validated for structure.

A spec names its fields and the steps that parse and mask them; ``transforms`` compiles it into a
fast callable and checks what only the engine can know (which step accepts which value kind).
Every model forbids unknown keys so that a typo in a spec file fails at start-up, not in traffic.
See docs/pipelines.md for the language.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, StrictInt, field_validator, model_validator

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
MAX_ROUND_PLACES = 18


def json_constant(value: Any) -> Any:
    """Normalize a constant written in a spec file into what the JSON decoder would produce.

    YAML reads ``1.5`` as a float and ``2024-01-01`` as a date; money must never be a float and a
    record never holds a date object, so both are converted before the engine sees them.
    """
    if value is None or isinstance(value, bool | str | int | Decimal):
        return value
    if isinstance(value, float):
        # repr is the shortest text that round-trips, so 100.5 becomes Decimal("100.5").
        return Decimal(repr(value))
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, list):
        return [json_constant(item) for item in value]
    if isinstance(value, dict):
        return {str(key): json_constant(item) for key, item in value.items()}
    raise ValueError(f"{type(value).__name__} is not a JSON value; write a string or a number")


JsonConstant = Annotated[Any, Field(description="Any JSON value.")]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# ---- parse steps: turn a raw JSON value into a typed value ---------------------------------------


class TimestampParse(_Model):
    """ISO 8601 / RFC 3339 text or epoch seconds/milliseconds, output as UTC ISO 8601."""

    op: Literal["timestamp"]
    timezone: str | None = Field(
        None, description="IANA zone of naive timestamps (default UTC), e.g. Europe/Paris."
    )

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                ZoneInfo(value)
            except (ZoneInfoNotFoundError, ValueError):
                raise ValueError(
                    f"unknown IANA time zone {value!r}; write e.g. Europe/Paris or America/New_York"
                ) from None
        return value


class DecimalParse(_Model):
    """A number or numeric text (thousands commas, currency symbols) as an exact Decimal."""

    op: Literal["decimal"]


class StringParse(_Model):
    """Text; numbers are accepted and written as text, anything else is invalid."""

    op: Literal["string"]


ParseStep = Annotated[TimestampParse | DecimalParse | StringParse, Field(discriminator="op")]


# ---- transform steps: mask, pseudonymize or normalize a parsed value -------------------------


class MaskEmail(_Model):
    """Keep the first and last character of the local part around ``***``; keep the domain."""

    op: Literal["mask_email"]


class MaskPhone(_Model):
    """``***-`` followed by the last four digits."""

    op: Literal["mask_phone"]


class CharacterMask(_Model):
    """Replace characters with a masking character (Google SDP's CharacterMaskConfig)."""

    op: Literal["mask"]
    char: str = Field("*", min_length=1, max_length=1, description="The masking character.")
    count: int | None = Field(None, ge=1, description="How many characters to mask; all if unset.")
    from_end: bool = Field(False, description="Mask from the end of the text instead of the start.")
    ignore: str = Field("", description="Characters left as they are and not counted.")


class Redact(_Model):
    """Drop the field from the output (it is still validated by the steps before it)."""

    op: Literal["redact"]


class Replace(_Model):
    """Replace any present value with a constant."""

    op: Literal["replace"]
    value: JsonConstant

    @field_validator("value", mode="before")
    @classmethod
    def _normalize(cls, value: Any) -> Any:
        return json_constant(value)


class KeyedHash(_Model):
    """HMAC-SHA256 of the value under the server secret, as 64 hex characters."""

    op: Literal["hash"]


class TruncateTimestamp(_Model):
    """Cut a timestamp down to the start of its minute, hour or day (in UTC)."""

    op: Literal["truncate_timestamp"]
    unit: Literal["minute", "hour", "day"]


class RoundDecimal(_Model):
    """Round a decimal to a fixed number of places; the output keeps exactly that scale."""

    op: Literal["round"]
    places: int = Field(2, ge=0, le=MAX_ROUND_PLACES)
    mode: Literal["half_even", "half_up", "half_down", "up", "down", "ceiling", "floor"] = (
        "half_even"
    )


class Trim(_Model):
    """Strip leading and trailing white space."""

    op: Literal["trim"]


class Lowercase(_Model):
    """Lower-case text (Unicode case folding is not applied; ``lower()`` semantics)."""

    op: Literal["lowercase"]


class Uppercase(_Model):
    """Upper-case text."""

    op: Literal["uppercase"]


TransformStep = Annotated[
    MaskEmail
    | MaskPhone
    | CharacterMask
    | Redact
    | Replace
    | KeyedHash
    | TruncateTimestamp
    | RoundDecimal
    | Trim
    | Lowercase
    | Uppercase,
    Field(discriminator="op"),
]


def _shorthand_step(value: Any) -> Any:
    # `parse: decimal` reads better than `parse: {op: decimal}`; both are accepted.
    return {"op": value} if isinstance(value, str) else value


class FieldRule(_Model):
    """One output field: where it comes from and the steps that produce it."""

    source: str = Field(min_length=1, description="Field name in the input record.")
    target: str = Field(
        min_length=1, description="Field name in the output; the source's if unset."
    )
    parse: ParseStep | None = None
    transform: list[TransformStep] = Field(default_factory=list)
    required: bool = True
    default: JsonConstant = None

    @field_validator("parse", mode="before")
    @classmethod
    def _parse_shorthand(cls, value: Any) -> Any:
        return _shorthand_step(value)

    @field_validator("transform", mode="before")
    @classmethod
    def _transform_shorthand(cls, value: Any) -> Any:
        steps = value if isinstance(value, list) else [value]
        return [_shorthand_step(step) for step in steps]

    @field_validator("default", mode="before")
    @classmethod
    def _normalize_default(cls, value: Any) -> Any:
        return json_constant(value)

    @model_validator(mode="before")
    @classmethod
    def _fill_in(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        data = dict(data)
        if not data.get("target"):
            data["target"] = data.get("source")
        if "default" in data and "required" not in data:
            # A default only makes sense for an optional field, so writing one implies it.
            data["required"] = False
        return data

    @model_validator(mode="after")
    def _check(self) -> FieldRule:
        if self.required and "default" in self.model_fields_set:
            raise ValueError(
                f"field {self.target!r} is required and has a default; "
                "drop `required: true` or the default"
            )
        for step in self.transform[:-1]:
            if isinstance(step, Redact):
                raise ValueError(f"field {self.target!r}: redact must be the last step")
        return self

    @property
    def has_default(self) -> bool:
        """Whether the spec gave a default (``default: null`` counts)."""
        return "default" in self.model_fields_set


# ---- filters: record-level conditions that drop a record -----------------------------------------


class EmptyFilter(_Model):
    """Drop a record whose field is missing, null, blank text, or an empty array or object."""

    op: Literal["empty"]
    field: str


class CompareFilter(_Model):
    """Drop a record whose parsed field value compares true against a constant."""

    op: Literal["equals", "not_equals", "gt", "gte", "lt", "lte"]
    field: str
    value: JsonConstant

    @field_validator("value", mode="before")
    @classmethod
    def _normalize(cls, value: Any) -> Any:
        return json_constant(value)


class MemberFilter(_Model):
    """Drop a record whose parsed field value is (``in``) or is not (``not_in``) in a list."""

    op: Literal["in", "not_in"]
    field: str
    values: list[JsonConstant] = Field(min_length=1)

    @field_validator("values", mode="before")
    @classmethod
    def _normalize(cls, value: Any) -> Any:
        return json_constant(value)


class DuplicateFilter(_Model):
    """Drop a record whose key repeats the key of an earlier kept record of the same batch."""

    op: Literal["duplicate"]
    key: list[str] = Field(min_length=1)


Filter = Annotated[
    EmptyFilter | CompareFilter | MemberFilter | DuplicateFilter, Field(discriminator="op")
]


class PipelineSpec(_Model):
    """A named, versioned pipeline: field rules, pass-through fields, filters, invalid policy."""

    name: str = Field(pattern=NAME_PATTERN)
    version: StrictInt = Field(
        ge=1, description="A positive integer; `name` resolves to the newest."
    )
    description: str = ""
    fields: list[FieldRule] = Field(min_length=1)
    passthrough: list[str] = Field(default_factory=list)
    filters: list[Filter] = Field(default_factory=list)
    on_invalid: Literal["reject", "skip"] = "reject"

    @property
    def ref(self) -> str:
        """The address of this spec, ``name@version``."""
        return f"{self.name}@{self.version}"

    @model_validator(mode="after")
    def _check_references(self) -> PipelineSpec:
        seen: set[str] = set()
        for name in [rule.target for rule in self.fields] + self.passthrough:
            if name in seen:
                raise ValueError(f"output field {name!r} is defined twice; rename one target")
            seen.add(name)
        dedupes = 0
        for index, flt in enumerate(self.filters):
            names = flt.key if isinstance(flt, DuplicateFilter) else [flt.field]
            dedupes += isinstance(flt, DuplicateFilter)
            for name in names:
                if name not in seen:
                    raise ValueError(
                        f"filters[{index}] refers to unknown field {name!r}; "
                        f"known output fields: {', '.join(sorted(seen))}"
                    )
        if dedupes > 1:
            raise ValueError("more than one duplicate filter; merge them into one key")
        return self


REF_PATTERN = re.compile(
    r"^(?P<name>[A-Za-z0-9][A-Za-z0-9_.-]{0,63})(?:@(?P<version>[1-9][0-9]*))?$"
)

__all__ = [
    "CharacterMask",
    "CompareFilter",
    "DecimalParse",
    "DuplicateFilter",
    "EmptyFilter",
    "FieldRule",
    "Filter",
    "KeyedHash",
    "Lowercase",
    "MaskEmail",
    "MaskPhone",
    "MemberFilter",
    "ParseStep",
    "PipelineSpec",
    "REF_PATTERN",
    "Redact",
    "Replace",
    "RoundDecimal",
    "StringParse",
    "TimestampParse",
    "TransformStep",
    "Trim",
    "TruncateTimestamp",
    "Uppercase",
    "json_constant",
]
