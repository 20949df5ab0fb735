"""Shared pytest configuration. Fixture modules live beside the tests and are imported
where they are used, so that each test file says what it depends on."""
