"""ONNX export of compiled specs, and the checks that tie the ONNX graph back to the spec.

``export`` imports torch; ``model``, ``names`` and ``shapes`` need only onnx,
so a ``.onnx`` file can be inspected and run without loading torch.
"""
