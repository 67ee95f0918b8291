"""Identities, API keys and the policy seam every service call goes through."""
