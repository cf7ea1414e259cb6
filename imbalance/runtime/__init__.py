"""How a stage runs, never what it computes: the warm start and the benchmark's profiling.

Below the layers that compute (``data``, ``training``, ``analysis`` may import it; it
imports none of them), and off every stage's ``deps`` in dvc.yaml: no module here can
change an output's bytes, which tests/test_inert.py proves module by module.
"""
