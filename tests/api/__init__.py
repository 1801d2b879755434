"""One real `statebridge serve` on real ports, driven over HTTP: the API as users see it."""
