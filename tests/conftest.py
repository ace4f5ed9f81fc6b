"""Cross-app tests; the shared fixtures come from kabinet.testing (loaded by pytest's -p)."""
