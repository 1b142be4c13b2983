"""Cleaning and masking (清洗加工 · 脱敏): identifier checks, sensitive-data discovery, masking
expressions and k-anonymity, each usable inside a DuckDB query so they run at the engine's speed.
"""
