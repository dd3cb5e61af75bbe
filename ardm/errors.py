"""One exception type for problems the user can fix (bad input, bad config, bad checkpoint).

The CLI turns an `ArdmError` into a single line `ardm: error: ...` and exit status 2; anything else
is a bug and keeps its traceback.
"""


class ArdmError(Exception):
    """A user-facing error: the message names the problem and, where possible, the fix."""
