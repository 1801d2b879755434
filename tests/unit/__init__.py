"""Tests that start no server: pure functions, files, the checkout itself."""
