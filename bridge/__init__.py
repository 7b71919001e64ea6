"""icws-bridge: an event bridge between Genesys PureConnect ICWS and Kafka."""

__version__ = "0.1.0"
