"""The gateway: API keys, per-key rate limits and budgets, and the spend ledger.

``service.GatewayService`` applies them; ``assembly.open_gateway`` builds it from settings (SQLite
or PostgreSQL for keys and the ledger, in-process or Redis for limits and budgets);
``middleware.GatewayMiddleware`` guards every HTTP route and ``metered.MeteredModel`` charges model
calls to the requesting key. See ``docs/gateway.md``.

Nothing is imported here, so ``genai-factory keys ...`` starts without loading the service.
"""
