"""Cross-cutting protections: response headers, server-side sessions."""
