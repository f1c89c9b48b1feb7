"""Trainers: the GRPO driver (`main_ppo`) and supervised fine-tuning (`main_sft`)."""
