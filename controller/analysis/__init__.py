"""The analysis of a run (analysis.json): per-phase figures and the run over time, with trends.

models.py, phases.py and timeline.py are pure (figures in, analysis out); read.py is the one part
that asks Prometheus, measuring each window with the gates' own PromQL (gates/compile.py).
"""
