"""The second release of `movies.py` (build with `-p v1.1`): v1.1, with
the fix."""

VERSION = "v1.1"
FIXED = True
