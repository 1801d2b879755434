"""What deploy/monitoring holds that is generated: the Grafana dashboard."""
