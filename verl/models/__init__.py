"""Policy models (per-model packages) and the registry that loads them by name."""
