"""The admin site (/admin/): pages over the service layer, one module per concern."""
