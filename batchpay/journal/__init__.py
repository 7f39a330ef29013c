"""The journal stage: plan a batch in SQLite, and remember every claim, answer and callback.

- store.py: ``Journal``, the one owner of SQL, made of the parts below
- connection.py: opening, migrating, transactions; outcome names as bound values and the
  one definition of a row's effective outcome
- reads.py: batches and rows as status, report and resume read them
- planning.py: a batch planned (every tradeNo committed before sending) or restored
- sending.py: claims and answers while sending (the narrow row_state records)
- callbacks.py: the callback log; repeats.py: payouts placed by other batches
- team.py: users and the policy; audit.py: the audit trail and its hash chain
- schema.py: the tables and the migrations (``PRAGMA user_version``)
- rows.py: what the journal stores, as Python values (rows by column, identities)
- locks.py: one process per batch
"""
