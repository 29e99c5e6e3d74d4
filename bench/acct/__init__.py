"""Helpers of bench/acct_bench.py: the servers under test and the load generator."""
