"""Managed pools: IP addresses, IPv6 prefixes, phone numbers and logins, as leases."""
