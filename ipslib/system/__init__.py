"""Layer 0 of ipslib: files and the machine, the facts every higher layer needs and nothing of IPS.

* :mod:`ipslib.system.files` - atomic writes (bytes, text, JSON, streamed chunks), ``file_md5``, ``data_root``,
  ``exclusive_lock`` (one process at a time), ``remove_stale_temps``;
* :mod:`ipslib.system.errors` - the expected failures (``IpslibError`` and its kinds) the command line reports;
* :mod:`ipslib.system.machine` - ``peak_memory_mb`` and ``machine_info``.

This package imports nothing else from ipslib (``tests/test_architecture.py`` checks it), so any module may
use it. Import from the submodules; this file re-exports nothing, so reading a file's md5 loads no torch.
"""
