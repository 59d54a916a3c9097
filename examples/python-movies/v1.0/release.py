"""The first release of `movies.py` (build with `-p v1.0`): v1.0, with the
bug (a title the catalog lacks fails with `KeyError('Title')`)."""

VERSION = "v1.0"
FIXED = False
