"""Probes: sample the system under test beside the Locust master and export what they see.

Many systems under test expose no Prometheus metrics of their own, so a run samples them: a
PostgreSQL server (pg_stat_activity), a Redis server (INFO), a JSON stats endpoint, local
processes. Probes run in their own process (`python -m locust_workers.probes`, started by the
local backend next to the master; a sidecar container of the master pod in the chart), never in
Locust's gevent loop, where a blocking driver call would stall the load.

Metric contract (every series also carries run_id and probe=<name>):
  loadctl_probe_up{run_id,probe,type}                        1 last sample ok, 0 failed
  loadctl_probe_errors_total{run_id,probe,type}              counter of failed samples
  loadctl_probe_last_success_timestamp_seconds{run_id,probe,type}
  loadctl_probe_duration_seconds{run_id,probe,type}          how long the last sample took
  loadctl_postgres_connections{run_id,probe,state}           client backends by state
  loadctl_postgres_max_connections{run_id,probe}
  loadctl_postgres_pool_utilization_ratio{run_id,probe}      connections / (pool_size or max_connections)
  loadctl_postgres_locks_waiting{run_id,probe}               pg_locks not granted
  loadctl_redis_keyspace_hit_ratio{run_id,probe}             since the probe started
  loadctl_redis_keyspace_hits_total{run_id,probe}, loadctl_redis_keyspace_misses_total{run_id,probe}
  loadctl_redis_used_memory_bytes{run_id,probe}, loadctl_redis_evicted_keys_total{run_id,probe}
  loadctl_redis_connected_clients{run_id,probe}
  <field name>{run_id,probe[,<label>]}                       http_json: one gauge per configured field
  loadctl_process_cpu_percent{run_id,probe}                  100 = one core
  loadctl_process_resident_memory_bytes{run_id,probe}, loadctl_process_threads{run_id,probe},
  loadctl_process_count{run_id,probe}

This package never imports controller: pods run it without the controller.
"""
