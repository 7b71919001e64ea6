"""Component tests: one shell part against fakes; no broker, no simulator, no sleeps."""
