"""Protocol-level fakes of the services the bot talks to.

Each fake is a real aiohttp server on 127.0.0.1 with an ephemeral port. The code under test
reaches it through a base URL, exactly as it reaches the real service, so nothing inside the
bot is patched or mocked.
"""
