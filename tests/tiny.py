"""The smallest megapixel-MNIST run the tests train: one base of flat config keys, changed per test module."""

BASE = dict(
    canvas_size=160,
    digit_size=28,
    n_noise=10,
    n_train=8,
    n_test=4,
    digit_source="sample",
    patch_size=40,
    memory_size=4,
    iter_size=4,
    n_res_blocks=1,
    n_heads=2,
    head_dim=8,
    mlp_dim=16,
    epochs=1,
    batch_size=4,
    warmup_epochs=0,
    device="cpu",
    threads=1,
)


def tiny_mnist(**changes) -> dict:
    """:data:`BASE` with ``changes`` applied (a new dict each call)."""
    return {**BASE, **changes}
