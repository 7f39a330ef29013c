"""Team controls (library only: no click, no web): people, sign-in, the policy, the audit trail.

- users.py: roles, users in the journal (Argon2id hashes, optional TOTP), who may manage them
- auth.py: ``authenticate`` (lockout after 5 failures, every failure audited), ``require_role``
- policy.py: the journal's policy, tightened by the environment: ``effective_policy``
- audit.py: ``record``, ``verify``, ``audit_head``: the append-only, hash-chained trail

Every statement is the journal's (``batchpay.journal.team``, ``batchpay.journal.audit``).
"""
