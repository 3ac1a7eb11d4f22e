"""Transports: how datagrams move between the client and server cores."""
