"""Utilities with no RL logic: checkpoint I/O, tracking, seeding, timing, FSDP helpers."""
