"""Overnight annealing series: plans, the SQLite catalog, the runner and the report."""
