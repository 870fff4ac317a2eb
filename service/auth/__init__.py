"""Identity for a shared deployment: API keys, principals, ownership, quotas, audit.

- ``keys``: key format, generation and hashing (only a SHA-256 is ever stored);
- ``principal``: who a request acts as, with which scopes;
- ``deps``: the FastAPI dependencies that authenticate a request and check a scope;
- ``policy``: ownership rules (who may cancel or read what);
- ``quotas``: submit-time admission against a user's quotas.
"""
