"""Discrete-event simulator of Chinese manufacturers adopting industrial-internet + AI.

Layers import one way: scenario -> population/model -> runner -> target/results/plots -> cli.
"""

__version__ = "0.1.0"
