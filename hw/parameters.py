"""Checks of build parameters shared by components (clear TypeError/ValueError messages)."""

__all__ = ["check_choice"]


def check_choice(name, value, choices):
    """Raise unless ``value`` is one of the strings ``choices``: a :exc:`TypeError` for a
    non-string, a :exc:`ValueError` for an unknown string, both naming ``name``."""
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a string, one of {choices}, not {value!r}")
    if value not in choices:
        raise ValueError(f"{name} must be one of {choices}, not {value!r}")
