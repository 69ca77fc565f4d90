"""Metrics: functions from predictions and references to per-item scores (ROUGE, BERTScore,
UMLS concept F1, set precision/recall/F1) and the statistics behind verdicts. No file, cache or
pytest here; BERTScore is handed a score store by the pipeline."""
