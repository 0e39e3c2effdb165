"""Discrete-event simulator of Chinese manufacturers adopting industrial-internet + AI.

Layers import one way: scenario -> population -> engines (model, tau, meanfield) -> runner ->
sweep/solve -> commands (cli*); figures (plots*) and analysis stand apart. The order is
checked by tests/test_style.py.
"""

__version__ = "0.1.0"
