"""Shared test set-up: one torch thread per test (tiny tensors gain nothing from threads, and the test
machines have 2 cores that the papermill kernels and training subprocesses of the book test share)."""

import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
