"""A run's summary for Prometheus, and the runs of the past read back.

summary.py  the pushed metrics' names (their contract) and the pure builder: run.json, stats.csv
            and gates.json -> a RunSummary -> a CollectorRegistry / exposition text
push.py     `loadctl run --pushgateway URL`: the push (I/O), recorded in run.json, a warning on failure
history.py  `loadctl history`: RunSummary rows from a results folder tree or from a Prometheus
            that scrapes the Pushgateway
"""
