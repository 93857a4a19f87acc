"""The OGC API faces: HTTP handlers that parse a request, call the core as its caller, render."""
