"""Schemathesis hooks for the Sandflow API fuzz run (see schemathesis.toml)."""

import schemathesis

# Module uploads are `application/wasm`: raw bytes, sent as they are.
schemathesis.serializer.alias("application/wasm", "application/octet-stream")
