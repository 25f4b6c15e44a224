"""The exceptions of the transform engine; every one says what to do next."""

from __future__ import annotations


class TransformsError(Exception):
    """Root of every exception this package raises."""


class SpecError(TransformsError):
    """A pipeline spec file is malformed; the message names the file, the problem and the fix."""


class UnknownPipelineError(TransformsError):
    """A pipeline reference does not match a loaded spec; the message lists the known refs."""
