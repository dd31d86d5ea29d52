"""One-off diagnostic tools: where a server's time goes, what a client costs, a quick load check."""
