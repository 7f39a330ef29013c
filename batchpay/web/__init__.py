"""The web console (``batchpay serve``): server-rendered pages over the library and the team
controls, for a finance team behind the organisation's TLS reverse proxy.

    sessions  session ids, idle expiry, CSRF tokens (in memory, server-side)
    uploads   an uploaded file saved under a server-chosen name, read as the CLI reads it
    views     what a page shows of a batch: totals, people, state, the actions a user may take
    sends     a batch sent in a worker thread with ``payrun.run_batch``; progress in memory
    pages     the routes' handlers
    app       the application: settings, middlewares (security headers, sessions), routes
"""
