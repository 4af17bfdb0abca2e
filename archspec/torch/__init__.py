"""PyTorch backend: build an ``nn.Module`` from a spec, or generate its source.

``build``, ``modules`` and ``verify`` import torch; ``codegen`` and ``names``
do not (they only read and emit text), and neither does this package, so
``archspec check`` and ``archspec codegen`` run without torch.
"""
