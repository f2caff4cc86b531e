"""Verification: same or different? Pair files, the 10-fold protocol, stored thresholds."""
