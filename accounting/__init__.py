"""Accounting: sessions and call records from NAS and PBX."""
