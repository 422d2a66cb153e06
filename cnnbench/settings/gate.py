"""The gate's settings: which checks a run must pass, and the fewest rounds a judged speedup needs.

A speedup drop is judged against one baseline run (``speedup_fail``) or against the protected level
of the saved history (``history_fail``), never both."""

from __future__ import annotations

from dataclasses import Field, dataclass, fields

from cnnbench.settings.options import OPTION

MIN_ROUNDS = 3  # one round gives an interval of zero width, two one far narrower than the truth


@dataclass(frozen=True)
class Gate:
    speedup_fail: float | None = None  # the largest speedup drop that passes: 0.2 is 20%
    min_efficiency: float | None = None
    min_busbw: float | None = None  # GB/s, the whole gradient's all-reduce
    history_fail: float | None = None  # the largest drop below the history's protected level that passes

    @property
    def set(self) -> bool:
        return self.judges_speedup or self.min_busbw is not None

    @property
    def judges_speedup(self) -> bool:
        """Judges speedups, which needs their intervals: at least MIN_ROUNDS rounds."""
        return self.drop_fail is not None or self.min_efficiency is not None

    @property
    def drop_fail(self) -> float | None:
        """The largest speedup drop that passes, against a baseline or the history's level."""
        return self.speedup_fail if self.speedup_fail is not None else self.history_fail

    def __str__(self) -> str:
        parts = []
        if self.speedup_fail is not None:
            parts.append(f"speedup drop beyond {self.speedup_fail:.0%} and beyond noise fails")
        if self.min_efficiency is not None:
            parts.append(f"efficiency below {self.min_efficiency:.0%} beyond noise fails")
        if self.min_busbw is not None:
            parts.append(f"all-reduce busbw below {self.min_busbw:g} GB/s fails")
        if self.history_fail is not None:
            level = "below its history's protected level, beyond noise, fails"
            parts.append(f"speedup more than {self.history_fail:.0%} {level}")
        return "; ".join(parts) or "none"


def gate_flags() -> list[str]:
    """The plugin's option for each gate, from the option table."""
    return [OPTION[gate.name.replace("_", "-")].flag for gate in fields(Gate)]


def baseline_gates() -> list[Field]:
    """The gates that judge a run against one baseline run, or none: all but the history's."""
    return [gate for gate in fields(Gate) if gate.name != "history_fail"]
