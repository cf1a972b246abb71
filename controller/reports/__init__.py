"""Human- and CI-readable renderings of a run's results, kept apart from how the results are computed.

Renderers are pure (a report in, text out) so each format is testable without a run; only the
`write_*` functions touch the run directory.
"""
