"""The event pipeline: ICWS messages through the core to Kafka (pump, publisher, restore)."""
