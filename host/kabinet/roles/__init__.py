"""The built-in ``roles`` plugin: roles, permissions, grants and the real access service."""
