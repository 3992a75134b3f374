"""The IPS model: patches, patch encoders, the cross-attention aggregator, iterative selection, STKIM.

Layer 2 of ipslib (see ``ipslib/__init__.py``): imports only :mod:`ipslib.config` and :mod:`ipslib.system`;
never data, training or the book. ``IPSNet`` (:mod:`ipslib.model.ips`) is the network;
``iterative_select`` (:mod:`ipslib.model.selection`) the no-grad loop.
"""
