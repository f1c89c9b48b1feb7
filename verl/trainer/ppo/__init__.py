"""The GRPO driver, its pure algorithms and its batch arithmetic."""
