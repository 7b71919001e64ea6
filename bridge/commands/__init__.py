"""The command pipeline: consumer, record handler, journal; each command runs once."""
