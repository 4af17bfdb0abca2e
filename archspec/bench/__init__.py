"""Benchmarking: ONNX Runtime against PyTorch on the same weights, with a measured roofline.

``run`` (settings, interleaved timing, the report), ``engines`` (one callable
per engine: ORT session, eager torch, torch.compile), ``roofline`` (the
measured matmul peak), ``environment`` (what the figures were measured on),
``render`` (tables and summary), ``plot`` (throughput against batch). Models
are prepared by :mod:`archspec.runtime.prepare`, run by :mod:`archspec.runtime`.
"""
