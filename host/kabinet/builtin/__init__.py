"""The host's own features, registered as plugins through the same hooks as any other."""
