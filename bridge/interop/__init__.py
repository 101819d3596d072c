"""Interop with Magenta's own formats: import its TensorFlow checkpoints as bundles, export
bundles for magenta.js.

Import reads TensorFlow (offline, never at serve time); export needs NumPy only. Both refuse a
layout our serving classes cannot run exactly, naming what is missing, rather than writing a
bundle that would play different notes from the original model.
"""
