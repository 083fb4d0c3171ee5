"""User accounts: storage, sign-in, per-user state, billing and entitlements."""
