"""The functional core: synchronous, deterministic, no I/O, no clock, no logging."""
