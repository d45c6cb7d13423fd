"""Who may do what: tokens, the tenants they map to, rate limits, and keeping secrets out of logs.

    tokens.py     a token's entry (hashed at rest), the tokens file the CLI writes
    principal.py  the caller a request runs as: its namespaces, read-only or not, its limits
    registry.py   presented token -> Principal, from config.toml, the tokens file, MEMENTO_AUTH_TOKEN
    ratelimit.py  per-client token buckets for writes and labels
    tenant.py     Memory as one principal may see and change it (what every tool calls)
    mcp.py        FastMCP's bearer check over the registry; which principal a tool call runs as
    redact.py     a logging filter that keeps tokens out of every log line
    cli.py        `memento-mcp token add|list|revoke`, `memento-mcp outcomes revoke`

stdio (one local user) runs as the `local` principal: every namespace, no limits, as before.
"""
