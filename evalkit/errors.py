"""The one exception type that means "the user gave us something wrong".

The CLI turns it into a single line on stderr and exit code 2; anything else is a bug and keeps its traceback.
"""


class EvalkitError(Exception):
    """A user-facing error: bad input, missing data or weights, unwritable output."""
