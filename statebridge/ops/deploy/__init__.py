"""Deployment helpers: the development TLS certificate and the nginx configuration renderer."""
