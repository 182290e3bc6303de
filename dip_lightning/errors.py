"""The one exception type for a user's mistake (bad config, missing data, bad values).

The CLI turns it into a short message and a non-zero exit instead of a traceback.
"""


class DipLightningError(ValueError):
    """A problem with the user's input: the message names what was wrong and how to fix it."""
