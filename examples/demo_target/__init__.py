"""The bundled system under test for the embedded demo: a small recipe API (see app.py)."""
