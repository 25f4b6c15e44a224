"""Each scenario reports what it measured: one line, printed with the others at the end."""

from __future__ import annotations

FIGURES: list[str] = []


def report(scenario: str, **figures: object) -> str:
    """Records ``scenario: name=value, ...`` (e.g. items_sent=..., stored=..., duplicated=...,
    recovered_s=...) and returns the line; it is also printed at once."""
    line = f"{scenario}: " + ", ".join(f"{name}={value}" for name, value in figures.items())
    FIGURES.append(line)
    print(f"RELIABILITY {line}")
    return line
