"""The standard library: function signatures (functions.py) and the
standard function blocks (blocks.py), written by hand in Python because they
sit on every scan's hot path."""
