"""The ICWS adapter: the aiohttp client, host rotation and login, the session."""
