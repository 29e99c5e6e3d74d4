"""Billing: tariffs, rating, ledger, payments, the scheduled loop and cut-off."""
