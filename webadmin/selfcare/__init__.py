"""Subscriber self-care (/my/): pages over a backend that is the API or, in-process, the same
service functions the API calls."""
