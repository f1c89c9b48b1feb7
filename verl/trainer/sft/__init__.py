"""Supervised fine-tuning of VLA policies on demonstrations: data, objective and driver."""
