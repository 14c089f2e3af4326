"""Tag `monitoring` (HOMELAB_MONITORING=true; README: Monitoring): Prometheus, Alertmanager, Grafana and
the blackbox exporter on the monitoring host (the `monitoring` group's first host, else the `core`
group's, else the inventory's first), the node exporter and cAdvisor on every host, the DCGM exporter on
hosts with a GPU, and the host metrics timer; their configuration (scrape targets, probes, alert rules,
Grafana's data source and dashboards) rendered from the host plan. With HOMELAB_MONITORING off it takes
down whatever of the set runs (data kept). Grafana's subdomain is set by deploys/proxy.py.

    pyinfra inventories/home.py deploys/monitoring.py
"""

from deploys.library import context, monitoring_steps

monitoring_steps.monitoring(context.current())
