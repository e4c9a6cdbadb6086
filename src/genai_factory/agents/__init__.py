"""Agent tools: the Tool protocol and the read-only SQL tools (``sql_query``, ``sql_schema``)."""
