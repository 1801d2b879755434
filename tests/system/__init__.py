"""Several processes: instances, private PostgreSQL and Redis, nginx, the command line, the docs."""
