"""User accounts: storage, sign-in, per-user state, paper accounts' owners, billing and
entitlements."""
