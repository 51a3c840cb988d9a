"""Tasks the embedded models are trained and measured on: Sudoku and the story grammar.

Pure Python: no torch, nothing else from unmask.
"""
