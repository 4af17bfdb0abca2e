"""PyTorch backend: build an ``nn.Module`` from a spec, or generate its source.

Importing this package imports torch; nothing on the ``archspec check`` path does.
"""
