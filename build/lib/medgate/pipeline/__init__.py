"""The generation pipeline: plan a task (load, few-shot split, prompts), answer every prompt
through the caching engine, and score. Knows nothing of pytest or of verdicts."""
