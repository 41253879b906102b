"""The one error type the CLI turns into a single line (message + what to do)."""


class BenchError(Exception):
    """An expected failure with a message and a hint for the user.

    The CLI prints ``error: <message> (<hint>)`` on one line and exits non-zero; the traceback is
    shown only with ``--debug``.
    """

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message
