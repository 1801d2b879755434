"""What the tests share: servers, private services, shapes, recordings, helpers."""
