"""End-to-end tests: the UI in Chromium against a running tickscan (a package, so its
fixtures end before the tests after it begin)."""
