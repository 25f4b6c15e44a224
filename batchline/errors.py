"""Root exception of the command-line and local-operations package."""


class BatchlineError(Exception):
    """Something the operator can fix; the message says how."""
