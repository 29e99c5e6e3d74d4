"""RADIUS protocol, authentication, authorization, CoA/Disconnect."""
