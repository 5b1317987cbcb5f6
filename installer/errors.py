"""Errors that reach the operator as a message and an exit code, never a traceback."""

from __future__ import annotations

from dataclasses import dataclass, field

EXIT_OK = 0
EXIT_STEP_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_CHECKS_FAILED = 3
EXIT_INTERRUPTED = 130


@dataclass
class Problem:
    """One thing wrong with the operator's input: where it is, what is wrong, how to fix it."""

    where: str
    message: str
    fix: str = ""
    line: int | None = None

    def render(self) -> str:
        loc = f"{self.where}" + (f" (line {self.line})" if self.line else "")
        text = f"{loc}: {self.message}"
        return f"{text}\n    fix: {self.fix}" if self.fix else text


@dataclass
class UserError(Exception):
    """Bad input from the operator. The CLI prints it and exits with `exit_code`."""

    summary: str
    problems: list[Problem] = field(default_factory=list)
    exit_code: int = EXIT_BAD_INPUT

    def __str__(self) -> str:
        lines = [self.summary] + ["  " + p.render().replace("\n", "\n  ") for p in self.problems]
        return "\n".join(lines)


class StepFailed(Exception):
    """A plan step failed; the message names what failed and the likeliest cause."""

    def __init__(self, message: str, *, cause: str = "", fix: str = "") -> None:
        super().__init__(message)
        self.cause = cause
        self.fix = fix


def os_problem(exc: OSError, where: object = None) -> str:
    """An OSError as a Problem's message: what the system said, and about which path when
    that is not `where` (the Problem's own)."""
    said = (exc.strerror or type(exc).__name__).lower()
    if isinstance(exc, FileExistsError | NotADirectoryError):
        said = "a file is in the way of a directory"
    named = exc.filename is not None and str(exc.filename) != str(where)
    return f"{said} ({exc.filename})" if named else said
