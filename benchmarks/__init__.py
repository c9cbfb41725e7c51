"""Benchmarks of the replay and live paths against backtesting.py and a bare numpy loop.

``make bench`` runs ``benchmarks/run.py``; the other modules are its parts.
"""
