"""NumPy inference: the layers every bundle's model is built from, with no TensorFlow."""
