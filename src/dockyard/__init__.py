"""dockyard: one manifest for a fleet of AI services."""

__version__ = "0.1.0"
