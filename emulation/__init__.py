"""Emulated parts of a city for tests and the demo: network namespaces, links."""
