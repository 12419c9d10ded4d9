"""The one exception type the CLI turns into a one-line error and a non-zero exit."""


class EdgeDigitsError(Exception):
    """A problem the user can fix: bad input, a missing or corrupt file. One-line message."""
