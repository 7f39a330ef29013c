"""The journal stage: plan a batch in SQLite, and remember every claim, answer and callback.

store (the Journal class, SQL's one owner), schema (tables and migrations), rows (what it
stores, as Python values).
"""
