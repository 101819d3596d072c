"""magenta-bridge: Magenta-style music models served over OSC from NumPy bundles."""

__version__ = "0.1.0"
