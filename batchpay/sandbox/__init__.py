"""The simulated Vexora gateway, for practice runs and tests; never imported by the sending
path (tests/test_layers.py checks)."""
