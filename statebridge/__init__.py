"""statebridge: the Phase 1 stateless/stateful API, persisted and scalable."""

__version__ = "2.0.0"
