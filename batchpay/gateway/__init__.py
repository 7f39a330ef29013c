"""Sign and send: the HTTP client (the only aiohttp client), the pure next-step rules, the
dispatcher that sends a batch, reconcile (asking the gateway), and the callback listener."""
