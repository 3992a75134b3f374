"""What a trained model and the records say: attention maps, kept-patch overlap, STKIM survival, densities.

Layer 6: reads trained models and run records (:mod:`ipslib.engine`); knows nothing of experiments,
profiles or the book (:mod:`ipslib.study`).
"""
