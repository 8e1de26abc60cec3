"""The one exception type for user errors: the CLI prints it as one line and exits non-zero."""


class BayesCompressError(ValueError):
    """Bad input or an impossible request, described in one line for the user.

    Subclasses ``ValueError`` so that callers catching ``ValueError`` keep working.
    """
