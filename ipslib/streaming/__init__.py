"""Patch sources that never hold the image whole: window-by-window cutting, memory-mapped arrays, TIFF tiles.

Layer 3: builds on :mod:`ipslib.model` (the ``PatchSource`` protocol, the patch grid); the datasets'
own streaming sources (megapixel MNIST rendered from its layout) live with the datasets in :mod:`ipslib.data`.
"""
